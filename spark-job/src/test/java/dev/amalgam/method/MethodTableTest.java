package dev.amalgam.method;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/** The README's method table is the one the declarations generate, so docs and validation agree. */
class MethodTableTest {

    @Test
    void theReadmeListsEveryMethodAsDeclared() throws IOException {
        String readme = Files.readString(Path.of("../README.md"));
        int begin = readme.indexOf("<!-- methods:begin -->\n");
        int end = readme.indexOf("<!-- methods:end -->");
        assertThat(begin).as("README has the methods:begin marker").isPositive();
        String documented = readme.substring(begin + "<!-- methods:begin -->\n".length(), end);
        assertThat(documented).as("regenerate with: scripts/amalgam methods").isEqualTo(MethodTable.markdown());
    }

    @Test
    void everyRegisteredMethodHasARowAndNoUnsupportedOneDoes() {
        String table = MethodTable.markdown();
        for (String name : MergeMethods.names()) {
            assertThat(table).contains("| `" + name + "` |");
            assertThat(MergeMethods.NOT_YET).doesNotContain(name);
        }
    }
}
