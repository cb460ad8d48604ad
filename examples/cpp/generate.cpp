// C++ with qisa.hpp: load, generate with a seed, stream to stdout.
//   qisa-cpp-example MODEL.qisa [PROMPT]
#include <iostream>

#include "qisa.hpp"

int main(int argc, char** argv) {
  try {
    qisa_cpp::Model model(argc > 1 ? argv[1] : "models/default.qisa");
    qisa_cpp::Context ctx(model);
    qisa_generate_params params;
    qisa_generate_default_params(&params);
    params.max_tokens = 100;
    params.sampling.seed = 42;
    const std::string prompt = argc > 2 ? argv[2] : "ROMEO:";
    std::cout << prompt;
    const auto r = ctx.generate(prompt, params, [](std::string_view piece) {
      std::cout << piece << std::flush;
      return true;  // keep going
    });
    std::cout << "\n[" << r.n_generated << " tokens]\n";
  } catch (const qisa_cpp::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
