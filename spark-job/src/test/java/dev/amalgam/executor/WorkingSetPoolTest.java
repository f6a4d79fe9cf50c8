package dev.amalgam.executor;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.CpuBackend;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;

/** A finished task's working set serves the next task of its shape, and never holds memory a task needs. */
class WorkingSetPoolTest {
    private static final long ONE_SET = CpuBackend.hostBytes(1 << 16, 2, true);

    @Test
    void theNextTaskOfTheSameShapeGetsTheSameBuffers() {
        try (BufferAllocator executor = new RootAllocator(4 * ONE_SET)) {
            ChunkKernels first = WorkingSetPool.acquire(CpuBackend.INSTANCE, executor, "t1", 1 << 16, 2, true, 0);
            WorkingSetPool.release(first);
            ChunkKernels second = WorkingSetPool.acquire(CpuBackend.INSTANCE, executor, "t2", 1 << 16, 2, true, 0);
            assertSame(first, second);
            ChunkKernels concurrent = WorkingSetPool.acquire(CpuBackend.INSTANCE, executor, "t3", 1 << 16, 2, true, 0);
            assertNotSame(second, concurrent);
            free(executor, second, concurrent);
        }
    }

    @Test
    void aTaskOfAnotherShapeFreesTheIdleSetsFirst() {
        try (BufferAllocator executor = new RootAllocator(4 * ONE_SET)) {
            WorkingSetPool.release(WorkingSetPool.acquire(CpuBackend.INSTANCE, executor, "t1", 1 << 16, 2, true, 0));
            assertEquals(ONE_SET, executor.getAllocatedMemory(), "kept idle");
            ChunkKernels other = WorkingSetPool.acquire(CpuBackend.INSTANCE, executor, "t2", 1 << 10, 2, true, 0);
            assertThat(executor.getAllocatedMemory()).isLessThan(ONE_SET);
            free(executor, other);
        }
    }

    /** Closes busy sets and empties the pool of this allocator's idle ones, so it closes clean. */
    private static void free(BufferAllocator executor, ChunkKernels... busy) {
        for (ChunkKernels k : busy) {
            WorkingSetPool.release(k);
        }
        // A task of a shape no one else asks for frees the idle sets; then it goes too.
        ChunkKernels other = WorkingSetPool.acquire(CpuBackend.INSTANCE, executor, "cleanup", 1, 0, false, 0);
        assertEquals(CpuBackend.hostBytes(1, 0, false), executor.getAllocatedMemory());
        other.close();
        assertEquals(0, executor.getAllocatedMemory());
    }
}
