// GPU tests skip, visibly, when no CUDA device is usable.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

TEST(Gpu, DeviceIsUsable) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    GTEST_SKIP() << "no usable CUDA device: " << (err != cudaSuccess ? cudaGetErrorString(err) : "0 devices");
  }
  cudaDeviceProp prop{};
  ASSERT_EQ(cudaGetDeviceProperties(&prop, 0), cudaSuccess);
  EXPECT_GT(prop.totalGlobalMem, 0u);
  std::cout << "GPU 0: " << prop.name << "\n";
}
