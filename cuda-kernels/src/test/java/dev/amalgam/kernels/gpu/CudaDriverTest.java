package dev.amalgam.kernels.gpu;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The driver probe answers, never throws, and is asked only once per JVM. */
class CudaDriverTest {

    @Test
    void theProbeAnswersWithAOneLineReasonWhenNoGpuIsUsable() {
        CudaDriver.Availability a = CudaDriver.probe();
        if (a.usable()) {
            assertTrue(a.devices() > 0);
            assertEquals("", a.reason());
        } else {
            assertFalse(a.reason().isBlank());
            assertFalse(a.reason().contains("\n"), a.reason());
        }
        assertSame(a, CudaDriver.probe());
    }

    @Test
    void theBuildPackagedThePtxForComputeCapability80() throws Exception {
        // build-ptx.sh skips only where nvcc is missing; this project's machines and CI have it.
        assumeTrue(BuildPtxScriptTest.nvccOnThisMachine(), "no nvcc on this machine: the build packaged no PTX");
        try (var in = CudaDriver.class.getResourceAsStream(CudaDriver.PTX_RESOURCE)) {
            assertTrue(in != null, "no " + CudaDriver.PTX_RESOURCE + " in the build output");
            String ptx = new String(in.readAllBytes(), java.nio.charset.StandardCharsets.US_ASCII);
            assertTrue(ptx.contains(".target sm_80"), "PTX target");
            for (Kernel k : Kernel.values()) {
                assertTrue(ptx.contains(".entry " + k.symbol() + "("), "PTX has no kernel " + k.symbol());
            }
            assertFalse(ptx.contains("fma.rn.f32"), "a float multiply-add was fused");
        }
    }
}
