// Keeping freed memory in the process for the next training step.
#pragma once

namespace qisa::train {

// A training step allocates and frees the same activation buffers every
// step. glibc's default serves blocks over 128 KiB with mmap and unmaps them
// on free (and trims the heap top), so each step faults its activations in
// again: on this project's VM that cost 25-50% of a step and made the
// QISA v3 / CSA ratio swing 1.3-2x between runs. This keeps blocks up to
// 32 MiB on the heap and freed heap memory mapped; the peak resident size
// is unchanged (it is the step's high-water mark either way). A no-op
// outside glibc. Called once by the trainer's and benchmarks' main.
void keep_freed_memory_for_reuse();

}  // namespace qisa::train
