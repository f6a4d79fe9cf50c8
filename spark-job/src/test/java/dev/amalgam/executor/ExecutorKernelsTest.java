package dev.amalgam.executor;

import dev.amalgam.kernels.CpuBackend;
import dev.amalgam.kernels.gpu.CudaDriver;
import org.apache.spark.resource.ResourceInformation;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

/** How an executor picks its kernels: the mode, the GPU Spark assigned, and what the machine has. */
class ExecutorKernelsTest {

    @Test
    void theGpuIsTheFirstAddressSparkAssignedElseDeviceZero() {
        assertEquals(0, ExecutorKernels.deviceOf(null));
        assertEquals(0, ExecutorKernels.deviceOf(new ResourceInformation("gpu", new String[0])));
        assertEquals(3, ExecutorKernels.deviceOf(new ResourceInformation("gpu", new String[]{"3", "4"})));
    }

    @Test
    void aGpuAddressThatIsNoOrdinalIsRejectedNamingTheDiscoveryScript() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> ExecutorKernels.deviceOf(new ResourceInformation("gpu", new String[]{"GPU-5f2e"})));
        assertThat(e.getMessage()).contains("'GPU-5f2e'").contains("conf/gpu-discovery.sh");
    }

    @Test
    void offAlwaysMeansTheCpu() {
        assertSame(CpuBackend.INSTANCE, ExecutorKernels.choose(ExecutorKernels.Mode.OFF, 0, false, -1));
    }

    @Test
    void withoutAUsableGpuAutoFallsBackAndOnRefuses() {
        CudaDriver.Availability cuda = CudaDriver.probe();
        assumeFalse(cuda.usable(), "this machine has a usable GPU");
        assertSame(CpuBackend.INSTANCE, ExecutorKernels.choose(ExecutorKernels.Mode.AUTO, 0, false, -1));
        ExecutorKernels.GpuUnavailableException e = assertThrows(ExecutorKernels.GpuUnavailableException.class,
                () -> ExecutorKernels.choose(ExecutorKernels.Mode.ON, 2, true, -1));
        assertThat(e.getMessage()).startsWith("--gpu on, but this executor has no usable GPU (GPU 2 assigned by Spark): " + cuda.reason());
    }

    @Test
    void modesParseCaseInsensitivelyAndNameTheSettingWhenWrong() {
        assertEquals(ExecutorKernels.Mode.ON, ExecutorKernels.Mode.parse(" On "));
        assertThat(assertThrows(IllegalArgumentException.class, () -> ExecutorKernels.Mode.parse("gpu")).getMessage())
                .isEqualTo("--gpu (spark.amalgam.gpu) is 'gpu'; use auto, on or off");
    }
}
