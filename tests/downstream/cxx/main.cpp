// A user's C++ program, written from the README's C++ snippet: the same
// generation as the C program (100 tokens, seed 42) through qisa.hpp.
#include <iostream>
#include <qisa.hpp>
#include <string_view>

int main(int argc, char** argv) {
  if (argc < 2) return 4;
  try {
    qisa_cpp::Model model(argv[1]);
    qisa_cpp::Context ctx(model);
    qisa_generate_params p;
    qisa_generate_default_params(&p);
    p.max_tokens = 100;
    p.sampling.seed = 42;
    std::cout << "ROMEO:";
    ctx.generate("ROMEO:", p, [](std::string_view piece) {
      std::cout << piece;
      return true;
    });
    std::cout << "\n";
  } catch (const qisa_cpp::Error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
