
// Testbench for the exported AAP array: memories, command, result streams, cycle counts.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include "V@TOP@.h"
#include "verilated.h"

static const int CORES = @CORES@;
static const int CMD_W32 = @CMD_W32@;
static const int NMEM = @NMEM@;  // the memories: w, v, u, b (and w1, v1, u1 in half mode)
static const int MEM_W32[NMEM] = {@MEM_W32@};
static const int OUT_W32[2] = {@O_W32@, @G_W32@};
static const int LAST_BIT[2] = {@O_LAST@, @G_LAST@};
static const uint32_t MAGIC = @MAGIC@u;

template <std::size_t N> static void put(VlWide<N>& p, const uint32_t* s) {
    for (std::size_t i = 0; i < N; i++) p[i] = s[i];
}
template <typename T> static void put(T& p, const uint32_t* s) {
    uint64_t v = s[0];
    if (sizeof(T) > 4) v |= (uint64_t)s[1] << 32;
    p = (T)v;
}
template <std::size_t N> static void get(const VlWide<N>& p, uint32_t* d) {
    for (std::size_t i = 0; i < N; i++) d[i] = p[i];
}
template <typename T> static void get(const T& p, uint32_t* d) {
    uint64_t v = p;
    d[0] = (uint32_t)v;
    if (sizeof(T) > 4) d[1] = (uint32_t)(v >> 32);
}

struct Mem {
    std::vector<uint32_t> words;
    std::vector<uint32_t> zero;
    uint32_t depth = 0;
    int w32 = 1;
};
struct Read {
    bool en;
    uint32_t addr;
};

static uint64_t oob = 0;
static const uint32_t* word(const Mem& m, uint32_t addr) {
    if (addr >= m.depth) {
        oob++;
        return m.zero.data();
    }
    return &m.words[(std::size_t)addr * m.w32];
}

static void sample_reads(V@TOP@* t, Read r[NMEM][CORES]) {
@SAMPLE@
}

static void apply_reads(V@TOP@* t, Read r[NMEM][CORES], const Mem* mem) {
@APPLY@
}

static uint64_t rng_state = 0;
static bool stall(uint32_t permille) {
    if (!permille) return false;
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (z % 1000) < permille;
}

static void read_exact(FILE* f, void* p, std::size_t n) {
    if (n && fread(p, 1, n, f) != n) {
        fprintf(stderr, "truncated input file\n");
        exit(3);
    }
}

static bool last_of(const uint32_t* p, int sel) {
    int bit = LAST_BIT[sel];
    return (p[bit / 32] >> (bit % 32)) & 1;
}

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s INPUT OUTPUT\n", argv[0]);
        return 2;
    }
    FILE* in = fopen(argv[1], "rb");
    if (!in) {
        fprintf(stderr, "cannot open %s\n", argv[1]);
        return 2;
    }
    uint32_t head[2];
    read_exact(in, head, sizeof head);
    if (head[0] != MAGIC) {
        fprintf(stderr, "bad input file\n");
        return 3;
    }
    const uint32_t jobs = head[1];
    FILE* out = fopen(argv[2], "wb");
    if (!out) {
        fprintf(stderr, "cannot open %s\n", argv[2]);
        return 2;
    }

    VerilatedContext ctx;
    V@TOP@* t = new V@TOP@(&ctx);
    Mem mem[NMEM];
    for (int q = 0; q < NMEM; q++) {
        mem[q].w32 = MEM_W32[q];
        mem[q].zero.assign(MEM_W32[q], 0);
    }
    Read reads[NMEM][CORES];
    std::memset(reads, 0, sizeof reads);
    t->rst = 1;
    t->cmd___05Fvalid = 0;
    t->o___05Fready = 0;
    t->g___05Fready = 0;
    for (int i = 0; i < 2; i++) {
        t->clk = 0;
        t->eval();
        t->clk = 1;
        t->eval();
    }
    t->rst = 0;

    std::vector<uint32_t> cmd(CMD_W32), payload, held;
    for (uint32_t j = 0; j < jobs; j++) {
        uint32_t jh[4];  // stream (0 = o, 1 = g), stall permille, seed, max edges
        read_exact(in, jh, sizeof jh);
        const int sel = jh[0];
        const uint32_t permille = jh[1];
        rng_state = jh[2];
        const uint64_t max_edges = jh[3];
        read_exact(in, cmd.data(), cmd.size() * 4);
        for (int q = 0; q < NMEM; q++) {
            uint32_t depth;
            read_exact(in, &depth, 4);
            mem[q].depth = depth;
            mem[q].words.resize((std::size_t)depth * mem[q].w32);
            read_exact(in, mem[q].words.data(), mem[q].words.size() * 4);
        }
        const int w32 = OUT_W32[sel];
        payload.assign(w32, 0);
        held.assign(w32, 0);
        std::vector<uint32_t> beats;
        uint64_t n_beats = 0, edge = 0, errors = 0;
        int64_t cmd_edge = -1, last_edge = -1;
        bool is_held = false, cmd_pending = true;
        oob = 0;
        put(t->cmd___05Fpayload, cmd.data());
        t->cmd___05Fvalid = 1;
        bool ready = !stall(permille);
        auto start = std::chrono::steady_clock::now();
        while (true) {
            t->o___05Fready = sel == 0 ? ready : 0;
            t->g___05Fready = sel == 1 ? ready : 0;
            t->clk = 0;
            t->eval();
            const bool cmd_fire = cmd_pending && t->cmd___05Fready;
            const bool valid = sel == 0 ? t->o___05Fvalid : t->g___05Fvalid;
            const bool other = sel == 0 ? t->g___05Fvalid : t->o___05Fvalid;
            if (other) errors |= 1;
            bool done = false;
            if (valid || is_held) {
                if (sel == 0) get(t->o___05Fpayload, payload.data());
                else get(t->g___05Fpayload, payload.data());
            }
            if (is_held && (!valid || payload != held)) errors |= 2;
            if (valid && ready) {
                beats.insert(beats.end(), payload.begin(), payload.end());
                n_beats++;
                is_held = false;
                if (last_of(payload.data(), sel)) {
                    last_edge = (int64_t)edge;
                    done = true;
                }
            } else if (valid) {
                is_held = true;
                held = payload;
            } else {
                is_held = false;
            }
            if (cmd_fire) cmd_edge = (int64_t)edge;
            sample_reads(t, reads);
            t->clk = 1;
            t->eval();
            apply_reads(t, reads, mem);
            edge++;
            if (cmd_fire) {
                cmd_pending = false;
                t->cmd___05Fvalid = 0;
            }
            ready = !stall(permille);
            if (done) break;
            if (edge >= max_edges) {
                fprintf(stderr, "job %u: no last result beat after %llu cycles\n", j,
                        (unsigned long long)edge);
                return 4;
            }
        }
        auto stop = std::chrono::steady_clock::now();
        if (cmd_edge < 0) errors |= 4;
        uint64_t header[6] = {
            n_beats, (uint64_t)(last_edge - cmd_edge), edge, errors, oob,
            (uint64_t)std::chrono::duration_cast<std::chrono::nanoseconds>(stop - start).count()};
        fwrite(header, sizeof header, 1, out);
        if (!beats.empty()) fwrite(beats.data(), 4, beats.size(), out);
    }
    fclose(in);
    if (fclose(out) != 0) {
        fprintf(stderr, "cannot write %s\n", argv[2]);
        return 2;
    }
    t->final();
    delete t;
    return 0;
}
