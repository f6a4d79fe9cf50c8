package dev.amalgam.kernels;

import org.apache.arrow.memory.ArrowBuf;

/** {@code linear}: the weighted sum of the models, divided by the sum of weights when normalizing. */
public final class LinearKernel {
    private LinearKernel() {
    }

    public static void merge(ArrowBuf[] models, float[] weights, int count, boolean normalize, ArrowBuf out) {
        float div = 0.0f;
        for (float w : weights) {
            div += w;
        }
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            float sum = 0.0f;
            for (int i = 0; i < models.length; i++) {
                sum += weights[i] * models[i].getFloat(at);
            }
            out.setFloat(at, normalize ? sum / div : sum);
        }
    }
}
