package dev.amalgam.kernels.gpu;

/** The differential suite on the CUDA sources compiled for the host: runs everywhere, CI included. */
class EmulatedKernelsDifferentialTest extends DeviceKernelsDifferentialTest {
    @Override
    Device device() {
        return new EmulatedDevice();
    }

    @Override
    long launches(Device device) {
        return ((EmulatedDevice) device).launches();
    }
}
