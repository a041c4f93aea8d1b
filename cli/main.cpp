#include "context.hpp"

int main(int argc, char** argv) { return impact::cli::run(argc, argv); }
