package dev.amalgam.job;

import dev.amalgam.AmalgamException;
import org.apache.spark.SparkConf;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** How the driver gets a standalone cluster's shared secret: from a private file or the environment, never argv. */
class SparkAuthenticationTest {
    private static final String SECRET = "3f1c0a9e5b7d42c8a1e6f0b9d3c7e2a4";
    @TempDir
    Path temp;

    private static SparkConf conf(String master, boolean authenticate) {
        return new SparkConf(false).setMaster(master).set("spark.authenticate", String.valueOf(authenticate));
    }

    private Path secretFile(String content, String permissions) throws Exception {
        Path file = temp.resolve("secret");
        Files.writeString(file, content);
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString(permissions));
        return file;
    }

    @Test
    void theSecretIsReadFromAFileOnlyItsOwnerCanRead() throws Exception {
        SparkConf conf = conf("spark://head:7077", true);
        SparkAuthentication.apply(conf, Map.of(SparkAuthentication.SECRET_FILE_ENV,
                secretFile(SECRET + "\n", "rw-------").toString()));
        assertThat(conf.get(SparkAuthentication.SECRET_KEY)).isEqualTo(SECRET);
    }

    @Test
    void aSecretFileOthersCanReadIsRefusedWithTheChmodThatFixesIt() throws Exception {
        Path file = secretFile(SECRET, "rw-r--r--");
        assertThatThrownBy(() -> SparkAuthentication.apply(conf("spark://head:7077", true),
                Map.of(SparkAuthentication.SECRET_FILE_ENV, file.toString())))
                .isInstanceOf(AmalgamException.class).hasMessageContaining(file.toString())
                .hasMessageContaining("chmod 600 " + file)
                .satisfies(e -> assertThat(((AmalgamException) e).kind()).isEqualTo(AmalgamException.Kind.CONFIG));
    }

    @Test
    void theSecretMayComeFromTheEnvironment() {
        SparkConf conf = conf("spark://head:7077", true);
        SparkAuthentication.apply(conf, Map.of(SparkAuthentication.SECRET_ENV, SECRET));
        assertThat(conf.get(SparkAuthentication.SECRET_KEY)).isEqualTo(SECRET);
    }

    @Test
    void aStandaloneMasterWithoutASecretIsRefusedBeforeSparkStarts() {
        assertThatThrownBy(() -> SparkAuthentication.apply(conf("spark://head:7077", true), Map.of()))
                .isInstanceOf(AmalgamException.class).hasMessageContaining(SparkAuthentication.SECRET_FILE_ENV)
                .hasMessageContaining("spark.authenticate false");
    }

    @Test
    void yarnKubernetesAndLocalMakeTheirOwnSecret() {
        for (String master : new String[]{"yarn", "k8s://https://api:6443", "local[2]"}) {
            SparkConf conf = conf(master, true);
            SparkAuthentication.apply(conf, Map.of());
            assertThat(conf.contains(SparkAuthentication.SECRET_KEY)).as(master).isFalse();
        }
    }

    @Test
    void aSecretThatAPropertiesFileWouldAlterIsRefused() {
        assertThatThrownBy(() -> SparkAuthentication.apply(conf("spark://head:7077", true),
                Map.of(SparkAuthentication.SECRET_ENV, "short\\secret with spaces")))
                .isInstanceOf(AmalgamException.class).hasMessageContaining("openssl rand -hex 32");
    }

    @Test
    void withoutAuthenticationNothingIsRead() {
        SparkConf conf = conf("spark://head:7077", false);
        SparkAuthentication.apply(conf, Map.of(SparkAuthentication.SECRET_FILE_ENV, "/nonexistent"));
        assertThat(conf.contains(SparkAuthentication.SECRET_KEY)).isFalse();
    }
}
