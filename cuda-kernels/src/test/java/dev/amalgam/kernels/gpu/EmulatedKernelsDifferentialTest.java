package dev.amalgam.kernels.gpu;

import org.junit.jupiter.api.Nested;

/**
 * The differential suite on the CUDA sources compiled for the host: runs everywhere, CI included.
 * Three times, with each launch's threads run in index order, in reverse, and shuffled: a kernel
 * whose result depends on the order its threads run in fails at least one of them.
 */
class EmulatedKernelsDifferentialTest extends DeviceKernelsDifferentialTest {
    @Override
    Device device() {
        return new EmulatedDevice(EmulatedDevice.ThreadOrder.FORWARD);
    }

    @Nested
    class ThreadsInReverse extends DeviceKernelsDifferentialTest {
        @Override
        Device device() {
            return new EmulatedDevice(EmulatedDevice.ThreadOrder.REVERSED);
        }
    }

    @Nested
    class ThreadsShuffled extends DeviceKernelsDifferentialTest {
        @Override
        Device device() {
            return new EmulatedDevice(EmulatedDevice.ThreadOrder.SHUFFLED);
        }
    }
}
