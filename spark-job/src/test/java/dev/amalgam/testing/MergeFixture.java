package dev.amalgam.testing;

import dev.amalgam.kernels.Dtype;
import dev.amalgam.sample.SampleCheckpoints;
import org.apache.hadoop.conf.Configuration;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Generated checkpoints (ties in |delta|, sign conflicts) and configs in a temporary directory. */
public final class MergeFixture {
    /** Small enough to merge in a second, with tensors of several row lengths. */
    public static final SampleCheckpoints.Shape SHAPE = new SampleCheckpoints.Shape(2, 16, 24, 40);

    public final Path root;
    public final String base;
    public final List<String> models;

    private MergeFixture(Path root, String base, List<String> models) {
        this.root = root;
        this.base = base;
        this.models = models;
    }

    public static MergeFixture create(Path root, Dtype dtype, int fineTunes, long shardBytes) {
        try {
            List<String> models = SampleCheckpoints.write(new Configuration(), root.toString(), SHAPE, dtype, fineTunes,
                    11, shardBytes);
            // Every fine-tune has its Fisher and second-moment companions, where generated configs look for them.
            for (int i = 0; i < models.size(); i++) {
                for (String kind : dev.amalgam.config.ModelSpec.COMPANION_KINDS) {
                    SampleCheckpoints.writeCompanion(new Configuration(),
                            dev.amalgam.cli.ExampleConfigs.companion(models.get(i), kind), SHAPE, dtype, kind, i + 1, 11);
                }
            }
            return new MergeFixture(root, root + "/base", models);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** One fixture per stored dtype, each in its own folder under {@code root}. */
    public static java.util.Map<Dtype, MergeFixture> perDtype(Path root, int fineTunes, long shardBytes) {
        java.util.Map<Dtype, MergeFixture> fixtures = new java.util.EnumMap<>(Dtype.class);
        for (Dtype dtype : Dtype.floats()) {
            fixtures.put(dtype, create(root.resolve(dtype.name()), dtype, fineTunes, shardBytes));
        }
        return fixtures;
    }

    public String config(String name, String yaml) {
        try {
            Path file = root.resolve(name);
            Files.writeString(file, yaml);
            return file.toString();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public String out(String name) {
        return root.resolve(name).toString();
    }
}
