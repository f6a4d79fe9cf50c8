package dev.amalgam.kernels;

/**
 * Whether the SIMD loops run: the JVM must have been started with
 * {@code --add-modules jdk.incubator.vector} (Spark 4 adds it to the executors it starts;
 * scripts/amalgam and the test JVM add it themselves), and {@code -Damalgam.simd=false} turns
 * it off. Without it the scalar loops run and give the same bytes.
 */
public final class Simd {
    public static final boolean ENABLED = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()
            && !"false".equals(System.getProperty("amalgam.simd"));

    private Simd() {
    }
}
