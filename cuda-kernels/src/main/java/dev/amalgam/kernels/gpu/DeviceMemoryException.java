package dev.amalgam.kernels.gpu;

/** The GPU (or the memory budget Amalgam may use on it) has too little room for a task's buffers. */
public final class DeviceMemoryException extends RuntimeException {
    public DeviceMemoryException(String message) {
        super(message);
    }
}
