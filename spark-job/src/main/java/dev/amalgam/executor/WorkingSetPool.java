package dev.amalgam.executor;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.CpuBackend;
import dev.amalgam.kernels.KernelBackend;
import org.apache.arrow.memory.BufferAllocator;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;

/**
 * Idle CPU working sets of finished tasks, kept for the next task of the same shape in this JVM.
 * A task's buffers are sized by the plan's largest chunk, hundreds of MB where tensors are kept
 * whole for their statistics, and memory fresh from the system costs a page fault per 4 KiB the
 * first time it is written: reusing the buffers of the previous task saves that (seconds per
 * merge). Idle sets stay under the executor's Arrow limit like busy ones, and never hold memory a
 * task needs: a task of another shape frees them all first, and a task of the same shape takes
 * one, so there are never more sets, idle or busy, than tasks that ran at once (what the plan's
 * resource check sized the limit for). GPU working sets are not kept (their streams and device
 * memory belong to a context).
 */
final class WorkingSetPool {
    private record Shape(BufferAllocator parent, int maxCount, int models, boolean hasBase, int companions) {
    }

    private static final Map<Shape, ArrayDeque<ChunkKernels>> IDLE = new HashMap<>();
    private static final Map<ChunkKernels, Shape> SHAPES = new java.util.IdentityHashMap<>();

    private WorkingSetPool() {
    }

    /** A working set for a task: an idle one of the same shape, else a new one. */
    static ChunkKernels acquire(KernelBackend backend, BufferAllocator parent, String taskName, int maxCount,
                                int models, boolean hasBase, int companions) {
        if (backend != CpuBackend.INSTANCE) {
            return backend.open(parent, taskName, maxCount, models, hasBase, companions);
        }
        Shape shape = new Shape(parent, maxCount, models, hasBase, companions);
        synchronized (WorkingSetPool.class) {
            ArrayDeque<ChunkKernels> idle = IDLE.get(shape);
            if (idle != null && !idle.isEmpty()) {
                return idle.pop();
            }
            closeIdle(shape);
            ChunkKernels opened = backend.open(parent, taskName, maxCount, models, hasBase, companions);
            SHAPES.put(opened, shape);
            return opened;
        }
    }

    /** Gives back a task's working set: kept if it came from here, closed otherwise. */
    static void release(ChunkKernels kernels) {
        synchronized (WorkingSetPool.class) {
            Shape shape = SHAPES.get(kernels);
            if (shape != null) {
                IDLE.computeIfAbsent(shape, s -> new ArrayDeque<>()).push(kernels);
                return;
            }
        }
        kernels.close();
    }

    /** Closes the idle sets of every shape but {@code keep}. */
    private static void closeIdle(Shape keep) {
        for (Iterator<Map.Entry<Shape, ArrayDeque<ChunkKernels>>> it = IDLE.entrySet().iterator(); it.hasNext(); ) {
            Map.Entry<Shape, ArrayDeque<ChunkKernels>> e = it.next();
            if (e.getKey().equals(keep)) {
                continue;
            }
            for (ChunkKernels k : e.getValue()) {
                SHAPES.remove(k);
                k.close();
            }
            it.remove();
        }
    }
}
