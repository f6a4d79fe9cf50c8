package dev.amalgam.kernels.gpu;

import jcuda.CudaException;
import jcuda.driver.JCudaDriver;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;

/**
 * Whether this JVM can run the CUDA kernels: a CUDA driver ({@code libcuda.so.1}), at least one
 * device, and a build that packaged the PTX. Probed once per JVM: without a driver JCuda's first
 * call throws {@link UnsatisfiedLinkError} and every later one {@link NoClassDefFoundError}, so
 * the answer is remembered, never re-asked.
 */
public final class CudaDriver {
    /** Where the build puts the kernels' PTX (cuda-kernels/build-ptx.sh). */
    public static final String PTX_RESOURCE = "/dev/amalgam/kernels/gpu/amalgam_kernels.ptx";

    private static Availability cached;

    private CudaDriver() {
    }

    /** The probe's answer: {@code reason} says why not when {@code usable} is false. */
    public record Availability(boolean usable, int devices, String driverVersion, String reason) {
    }

    public static synchronized Availability probe() {
        if (cached == null) {
            cached = probeOnce();
        }
        return cached;
    }

    private static Availability probeOnce() {
        if (CudaDriver.class.getResource(PTX_RESOURCE) == null) {
            return new Availability(false, 0, "", "this build of Amalgam has no CUDA kernels (it was built where nvcc "
                    + "was not found; see docs/gpu.md)");
        }
        try {
            JCudaDriver.setExceptionsEnabled(true);
            JCudaDriver.cuInit(0);
            int[] version = new int[1];
            JCudaDriver.cuDriverGetVersion(version);
            String driver = (version[0] / 1000) + "." + (version[0] % 1000) / 10;
            int[] count = new int[1];
            JCudaDriver.cuDeviceGetCount(count);
            if (count[0] == 0) {
                return new Availability(false, 0, driver, "the CUDA driver " + driver + " sees no GPU");
            }
            return new Availability(true, count[0], driver, "");
        } catch (LinkageError e) {
            return new Availability(false, 0, "", "no CUDA driver could be loaded (" + loaderReason(e) + ")");
        } catch (CudaException e) {
            return new Availability(false, 0, "", "the CUDA driver failed to start: " + firstLine(e.getMessage()));
        }
    }

    /** The PTX text of the kernels, as the build packaged it. */
    static String ptx() {
        try (InputStream in = CudaDriver.class.getResourceAsStream(PTX_RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("missing resource " + PTX_RESOURCE);
            }
            return new String(in.readAllBytes(), StandardCharsets.US_ASCII);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read " + PTX_RESOURCE, e);
        }
    }

    /** The line of JCuda's loader report that names the missing library, else its first line. */
    private static String loaderReason(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t.getMessage() == null) {
                continue;
            }
            for (String line : t.getMessage().split("\n")) {
                int at = line.indexOf("libcuda");
                if (at >= 0) {
                    return line.substring(at).trim();
                }
            }
        }
        return firstLine(e.getMessage());
    }

    private static String firstLine(String message) {
        if (message == null) {
            return "no message";
        }
        int end = message.indexOf('\n');
        return (end < 0 ? message : message.substring(0, end)).trim();
    }
}
