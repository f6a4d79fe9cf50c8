package dev.amalgam.kernels;

import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The planner's figure for a task's working set is what opening one actually allocates. */
class CpuBackendTest {

    @ParameterizedTest
    @CsvSource({"1048576, 2, true", "1000, 3, false", "4194304, 1, true", "12345, 5, true"})
    void hostBytesIsWhatAWorkingSetAllocates(int maxCount, int models, boolean hasBase) {
        try (BufferAllocator root = new RootAllocator();
             ChunkKernels kernels = CpuBackend.INSTANCE.open(root, "task", maxCount, models, hasBase)) {
            assertEquals(CpuBackend.hostBytes(maxCount, models, hasBase), root.getAllocatedMemory());
        }
    }
}
