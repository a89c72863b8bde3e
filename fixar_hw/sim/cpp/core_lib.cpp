
// fixar-hw: a FixarCore exported by Verilator, driven cycle by cycle from a host program.
// The control port is driven with Wishbone B4 pipelined transactions; the DMA master is served
// by a word-addressed memory with the semantics of fixar_hw.sim.testing.wishbone_slave, which
// also records the cycle of the last write to each word. Built with -DFX_TRACE (and Verilator's
// --trace-fst), fx_trace_open writes every signal to an FST file: cycle N's rising clock edge at
// 10 N - 5 ns, as in the Amaranth simulator's VCD.
#include "V@TOP@.h"
#include "verilated.h"
#ifdef FX_TRACE
#include "verilated_fst_c.h"
#endif
#include <cstdint>
#include <deque>
#include <unordered_map>
#include <unordered_set>

namespace {

struct Pending { int64_t left; bool ok; uint32_t data; };

struct Harness {
    VerilatedContext* ctx;
    V@TOP@* top;
    std::unordered_map<uint64_t, uint32_t> mem;
    std::unordered_map<uint64_t, uint64_t> written;  // word -> cycle of the DMA's last write
    std::unordered_set<uint64_t> errors;
    std::deque<Pending> pending;
    uint32_t wait_states;
    uint32_t rng;              // xorshift32 state; 0: fixed latency and no stalls
    uint64_t cycles;
#ifdef FX_TRACE
    VerilatedFstC* trace = nullptr;
#endif
};

void dump(Harness* h, uint64_t time) {
#ifdef FX_TRACE
    if (h->trace) h->trace->dump(time);
#else
    (void)h; (void)time;
#endif
}

struct Sample { bool ack, err, stall; uint32_t data; };

uint32_t draw(Harness* h) {
    uint32_t x = h->rng;
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    return h->rng = x;
}

// One clock cycle: drive the DMA slave's outputs, settle, sample both buses, clock edge,
// then update the slave's state from the sampled request.
Sample step(Harness* h) {
    V@TOP@* t = h->top;
    const bool stall = h->rng != 0 && (draw(h) & 3) == 0;
    t->@DMA_STALL@ = stall;
    const bool due = !h->pending.empty() && h->pending.front().left <= 0;
    const bool answer = due && t->@DMA_CYC@;
    const Pending head = due ? h->pending.front() : Pending{0, false, 0};
    t->@DMA_ACK@ = answer && head.ok;
    t->@DMA_ERR@ = answer && !head.ok;
    t->@DMA_DAT_R@ = answer && head.ok ? head.data : 0;
    t->eval();
    dump(h, 10 * h->cycles);
    const bool cyc = t->@DMA_CYC@, stb = t->@DMA_STB@, we = t->@DMA_WE@;
    const uint64_t adr = t->@DMA_ADR@;
    const uint32_t dat_w = t->@DMA_DAT_W@, sel = t->@DMA_SEL@;
    const Sample s{(bool)t->@CSR_ACK@, (bool)t->@CSR_ERR@, (bool)t->@CSR_STALL@,
                   (uint32_t)t->@CSR_DAT_R@};
    t->clk = 1; t->eval();
    dump(h, 10 * h->cycles + 5);
    t->clk = 0;                // settled with the next cycle's inputs
    ++h->cycles;
    if (answer) h->pending.pop_front();
    for (Pending& p : h->pending) --p.left;
    if (!cyc) {
        h->pending.clear();
    } else if (stb && !stall) {
        const bool ok = h->errors.count(adr) == 0;
        uint32_t data = 0;
        if (ok && we) {
            uint32_t old = h->mem.count(adr) ? h->mem[adr] : 0;
            for (int lane = 0; lane < 4; ++lane) {
                if ((sel >> lane) & 1) {
                    const uint32_t m = 0xFFu << (8 * lane);
                    old = (old & ~m) | (dat_w & m);
                }
            }
            h->mem[adr] = old;
            h->written[adr] = h->cycles;
        } else if (ok) {
            auto it = h->mem.find(adr);
            data = it == h->mem.end() ? 0 : it->second;
        }
        int64_t wait = h->wait_states;
        if (h->rng != 0) wait = h->wait_states ? draw(h) % (h->wait_states + 1) : 0;
        h->pending.push_back(Pending{wait, ok, data});
    }
    return s;
}

// One control-port transaction; returns 1 (ack), 0 (err) or -1 (no answer in time).
int access(Harness* h, bool we, uint32_t offset, uint32_t value, uint32_t* data) {
    V@TOP@* t = h->top;
    t->@CSR_CYC@ = 1; t->@CSR_STB@ = 1; t->@CSR_ADR@ = offset; t->@CSR_WE@ = we;
    t->@CSR_DAT_W@ = we ? value : 0; t->@CSR_SEL@ = 0xF;
    Sample s;
    uint64_t limit = 1000000;
    do { s = step(h); } while (s.stall && --limit);
    t->@CSR_STB@ = 0;
    int result = -1;
    while (limit--) {
        s = step(h);
        if (s.ack || s.err) { result = s.ack ? 1 : 0; break; }
    }
    t->@CSR_CYC@ = 0; t->@CSR_WE@ = 0;
    if (data) *data = s.data;
    return result;
}

}  // namespace

extern "C" {

void* fx_create(uint32_t wait_states, uint32_t seed, const uint64_t* errors, uint32_t n_errors) {
    Harness* h = new Harness;
    h->ctx = new VerilatedContext;
#ifdef FX_TRACE
    h->ctx->traceEverOn(true);
#endif
    h->top = new V@TOP@{h->ctx};
    for (uint32_t i = 0; i < n_errors; ++i) h->errors.insert(errors[i]);
    h->wait_states = wait_states;
    h->rng = seed;
    h->cycles = 0;
    V@TOP@* t = h->top;
    t->clk = 0; t->rst = 1;
    t->@CSR_CYC@ = 0; t->@CSR_STB@ = 0; t->@CSR_WE@ = 0;
    t->eval();
    for (int i = 0; i < 4; ++i) step(h);
    t->rst = 0; t->eval();
    h->pending.clear();
    h->cycles = 0;
    return h;
}

void fx_trace_close(void* p) {
#ifdef FX_TRACE
    Harness* h = static_cast<Harness*>(p);
    if (h->trace) {
        h->trace->close();
        delete h->trace;
        h->trace = nullptr;
    }
#else
    (void)p;
#endif
}

// Start writing every signal to the FST file `path`: 1 (open), 0 (it could not be opened or a
// trace is already open), -1 (a library built without FX_TRACE).
int fx_trace_open(void* p, const char* path) {
#ifdef FX_TRACE
    Harness* h = static_cast<Harness*>(p);
    if (h->trace) return 0;
    h->trace = new VerilatedFstC;
    h->top->trace(h->trace, 99);
    h->trace->open(path);
    if (!h->trace->isOpen()) {
        delete h->trace;
        h->trace = nullptr;
        return 0;
    }
    return 1;
#else
    (void)p; (void)path;
    return -1;
#endif
}

void fx_destroy(void* p) {
    Harness* h = static_cast<Harness*>(p);
    fx_trace_close(p);
    h->top->final();
    delete h->top;
    delete h->ctx;
    delete h;
}

uint32_t fx_csr_read(void* p, uint32_t offset, int* ok) {
    uint32_t data = 0;
    *ok = access(static_cast<Harness*>(p), false, offset, 0, &data);
    return data;
}

int fx_csr_write(void* p, uint32_t offset, uint32_t value) {
    return access(static_cast<Harness*>(p), true, offset, value, nullptr);
}

void fx_mem_write(void* p, uint64_t addr, uint32_t n, const uint32_t* words) {
    Harness* h = static_cast<Harness*>(p);
    for (uint32_t i = 0; i < n; ++i) {
        h->mem[addr + i] = words[i];
        h->written.erase(addr + i);
    }
}

// The cycle of the DMA's last write to word `addr`, or -1 (never, or the host wrote it since).
int64_t fx_write_cycle(void* p, uint64_t addr) {
    Harness* h = static_cast<Harness*>(p);
    auto it = h->written.find(addr);
    return it == h->written.end() ? -1 : static_cast<int64_t>(it->second);
}

void fx_mem_read(void* p, uint64_t addr, uint32_t n, uint32_t* words) {
    Harness* h = static_cast<Harness*>(p);
    for (uint32_t i = 0; i < n; ++i) {
        auto it = h->mem.find(addr + i);
        words[i] = it == h->mem.end() ? 0 : it->second;
    }
}

void fx_idle(void* p, uint64_t cycles) {
    Harness* h = static_cast<Harness*>(p);
    for (uint64_t i = 0; i < cycles; ++i) step(h);
}

uint64_t fx_cycles(void* p) { return static_cast<Harness*>(p)->cycles; }

}  // extern "C"
