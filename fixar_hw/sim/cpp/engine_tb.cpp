
// Testbench for the exported training engine: load a program, run it, print the counters.
#include "V@TOP@.h"
#include "verilated.h"
#include <cstdint>
#include <cstdio>
#include <vector>

static V@TOP@* t;
static uint64_t edges = 0;

static void tick() {
    t->clk = 1; t->eval(); ++edges;
    t->clk = 0; t->eval();
}

int main(int argc, char** argv) {
    VerilatedContext* ctx = new VerilatedContext;
    ctx->commandArgs(argc, argv);
    t = new V@TOP@{ctx};
    FILE* in = fopen(argv[1], "rb");
    if (!in) { fprintf(stderr, "cannot open %s\n", argv[1]); return 2; }
    uint32_t header[2];
    if (fread(header, 4, 2, in) != 2) return 2;
    const uint32_t n_words = header[0], w32 = header[1];
    std::vector<uint32_t> prog((size_t)n_words * w32);
    if (fread(prog.data(), 4, prog.size(), in) != prog.size()) return 2;
    fclose(in);
    t->clk = 0; t->rst = 1; t->eval();
    tick(); tick();
    t->rst = 0; t->eval();
    for (uint32_t i = 0; i < n_words; ++i) {
        const uint32_t* word = &prog[(size_t)i * w32];
        t->@PWA@ = i;
@SETDATA@
        t->@PWE@ = 1;
        tick();
    }
    t->@PWE@ = 0;
    t->@SV@ = 1; t->@SP@ = 0; t->eval();
    while (!t->@SR@) tick();
    tick();                  // the start transfer
    t->@SV@ = 0; t->eval();
    const uint64_t first = edges;
    while (t->busy) {
        tick();
        if (edges - first > 4000000000ull) { fprintf(stderr, "runaway\n"); return 3; }
    }
    printf("edges %llu\nperf ", (unsigned long long)(edges - first));
@GETPERF@
    printf("\n");
    delete t;
    delete ctx;
    return 0;
}
