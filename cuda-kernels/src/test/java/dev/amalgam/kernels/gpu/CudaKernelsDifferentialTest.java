package dev.amalgam.kernels.gpu;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The differential suite on a real GPU through JCuda: the PTX the build packaged, pinned host
 * memory, streams and all. Skipped, with the probe's reason, where no usable GPU is present.
 */
class CudaKernelsDifferentialTest extends DeviceKernelsDifferentialTest {
    @Override
    Device device() {
        CudaDriver.Availability cuda = CudaDriver.probe();
        assumeTrue(cuda.usable(), () -> "no GPU test: " + cuda.reason());
        return CudaDevice.open(0);
    }
}
