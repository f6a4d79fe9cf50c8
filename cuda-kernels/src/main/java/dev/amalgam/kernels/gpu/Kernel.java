package dev.amalgam.kernels.gpu;

/**
 * The kernels of {@code src/main/cuda/amalgam_kernels.cu}, with their parameter types in
 * declaration order (see {@link KernelArgs} for the characters).
 */
public enum Kernel {
    DECODE("amalgam_decode", "pipi"),
    ENCODE("amalgam_encode", "pipi"),
    DELTA("amalgam_delta", "pppi"),
    SQUARE_TILES("amalgam_square_tiles", "pip"),
    DELTA_DOT_TILES("amalgam_delta_dot_tiles", "pppip"),
    HISTOGRAM_HIGH("amalgam_histogram_high", "pip"),
    HISTOGRAM_LOW("amalgam_histogram_low", "piup"),
    COUNT_EQUAL_TILES("amalgam_count_equal_tiles", "piup"),
    EXCLUSIVE_PREFIX("amalgam_exclusive_prefix", "piL"),
    EXACT_SUM("amalgam_exact_sum", "pipp"),
    KEEP_TOP_K("amalgam_keep_top_k", "ppiulpp"),
    KEEP_BAND("amalgam_keep_band", "ppiiulpiulpp"),
    KEEP_RANDOM("amalgam_keep_random", "ppiLlLp"),
    KEEP_DELLA("amalgam_keep_della", "ppiiffLlp"),
    MERGE_TASK_VECTOR("amalgam_merge_task_vector", "ppppiiiiffpp"),
    MERGE_LINEAR("amalgam_merge_linear", "ppiiifp"),
    EXACT_DOT("amalgam_exact_dot", "ppipp"),
    COUNT_NONZERO("amalgam_count_nonzero", "pip"),
    ROW_DOTS("amalgam_row_dots", "ppiip"),
    COMBINE("amalgam_combine", "ppppipiiiip"),
    COLUMN_DOTS("amalgam_column_dots", "ppiip"),
    NEARSWAP("amalgam_nearswap", "ppfip"),
    SCALE("amalgam_scale", "pfiip"),
    LOW_RANK("amalgam_low_rank", "ppplilfiiiii"),
    RAM("amalgam_ram", "pipfpiip"),
    RAM_COUNTS("amalgam_ram_counts", "pipfip"),
    VARIANCE("amalgam_variance", "pipip"),
    SELECTED_DELTA("amalgam_selected_delta", "pppip"),
    SCE("amalgam_sce", "ppippiip"),
    IMPORTANCE("amalgam_importance", "ppiip"),
    FUSE("amalgam_fuse", "pppfip"),
    DEQUANT_FP8("amalgam_dequant_fp8", "pipliiililpi"),
    DEQUANT_MXFP4("amalgam_dequant_mxfp4", "pppi"),
    MERGE_TIES_MODEL("amalgam_merge_ties_model", "pppiiifp"),
    ADD_WEIGHTED("amalgam_add_weighted", "pfiip"),
    SIGN_COUNTS("amalgam_sign_counts", "pip"),
    EXACT_SIGNED_SUM("amalgam_exact_signed_sum", "pipp"),
    VARM_ELEMENT("amalgam_varm_element", "ppiiifip"),
    KEPT_BITS("amalgam_kept_bits", "piiip"),
    CONSENSUS("amalgam_consensus", "ppppiiiifuip"),
    WIDEN_ELEMENTS("amalgam_widen_elements", "ppipfip"),
    PCB_BALANCE("amalgam_pcb_balance", "ppiiffiip"),
    PCB("amalgam_pcb", "ppipfip"),
    FISHER("amalgam_fisher", "pppifiip"),
    OTA("amalgam_ota", "ppifip"),
    SALIENCE("amalgam_salience", "pppip"),
    GRAFT("amalgam_graft", "pppiulppp");

    /** Bins of an exact dot product (AMALGAM_DOT_BINS, ExactDot.BINS). */
    public static final int DOT_BINS = 555;

    /** Elements per tile of the equal-rank prefixes (AMALGAM_RANK_TILE). */
    public static final int RANK_TILE = 256;
    /** Elements per tile of the report's sums of squares (AMALGAM_SUM_TILE). */
    public static final int SUM_TILE = 1024;
    /** Lanes of the integer counters (AMALGAM_LANES). */
    public static final int LANES = 64;
    /** Threads per block of every launch. */
    public static final int BLOCK = 256;

    private final String symbol;
    private final String signature;

    Kernel(String symbol, String signature) {
        this.symbol = symbol;
        this.signature = signature;
    }

    /** The kernel's name in the PTX module. */
    public String symbol() {
        return symbol;
    }

    public String signature() {
        return signature;
    }

    /** Blocks of {@link #BLOCK} threads for at least {@code threads} threads (0: nothing to launch). */
    public int blocksFor(long threads) {
        long blocks = (threads + BLOCK - 1) / BLOCK;
        if (blocks > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(symbol + " launched for " + threads + " threads, more than one grid holds");
        }
        return (int) blocks;
    }

    /** Fails unless {@code args} match this kernel's parameter list. */
    public void check(KernelArgs args) {
        if (!signature.equals(args.signature())) {
            throw new IllegalArgumentException(symbol + " takes (" + signature + "), launched with (" + args.signature() + ")");
        }
    }
}
