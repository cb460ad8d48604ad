// The process's C allocator, interposed for the allocation tests (the
// library, oneDNN and libgomp included; operator new goes through malloc):
// counts allocations, tracks live and peak bytes, and makes a chosen
// allocation fail. Not built under sanitizers (they own malloc).
#pragma once

#include <cstddef>

namespace qisa::alloc {

// Counting: allocations made while counting is on.
void set_counting(bool on);
long allocations();
void reset_allocations();

// Bytes live now minus bytes live at reset_bytes(), and its largest value
// since then (usable sizes, so allocator rounding is included).
void reset_bytes();
long long live_bytes();
long long peak_bytes();

// Makes the n-th allocation from now fail (1: the next one; 0: none).
// Allocations made by libgomp are neither counted nor failed: it exits
// the process on a failed allocation, which nothing above it can catch.
void fail_nth(long n);
// Whether the armed failure has happened.
bool failure_happened();

}  // namespace qisa::alloc
