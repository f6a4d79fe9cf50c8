package dev.amalgam.config;

import dev.amalgam.AmalgamException;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** YAML as the widely used tool's loader reads it, within limits a hostile file cannot pass. */
class ConfigYamlTest {

    private static String refused(String yaml) {
        AmalgamException e = assertThrows(AmalgamException.class, () -> MergeConfigParser.parse("ties.yml", yaml));
        assertEquals(AmalgamException.Kind.CONFIG, e.kind());
        return e.getMessage();
    }

    @Test
    void anchorsAndAliasesResolve() {
        MergeConfig c = MergeConfigParser.parse("ties.yml", """
                merge_method: ties
                base_model: /data/base
                models:
                  - model: /data/math
                    parameters: &defaults {weight: 0.5, density: 0.7}
                  - model: /data/code
                    parameters: *defaults
                """);
        assertEquals(c.models().get(0).parameters(), c.models().get(1).parameters());
        assertEquals(new ParameterValue.Scalar(0.7), c.models().get(1).parameters().get("density"));
    }

    @Test
    void mergeKeysCombineAnAnchorWithOverrides() {
        MergeConfig c = MergeConfigParser.parse("ties.yml", """
                merge_method: ties
                base_model: /data/base
                models:
                  - model: /data/math
                    parameters: &defaults {weight: 0.5, density: 0.7}
                  - model: /data/code
                    parameters:
                      <<: *defaults
                      density: 0.3
                """);
        assertEquals(new ParameterValue.Scalar(0.5), c.models().get(1).parameters().get("weight"));
        assertEquals(new ParameterValue.Scalar(0.3), c.models().get(1).parameters().get("density"));
    }

    @Test
    void anAliasOfAnUndefinedAnchorNamesIt() {
        assertThat(refused("merge_method: ties\nmodels: [{model: a, parameters: *nothing}]\n"))
                .contains("ties.yml").contains("nothing");
    }

    @Test
    void exponentialAliasExpansionIsRefusedWithTheLimit() {
        StringBuilder yaml = new StringBuilder("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for (int i = 1; i < 12; i++) {
            yaml.append("a").append(i).append(": &a").append(i).append(" [");
            yaml.append(("*a" + (i - 1) + ", ").repeat(9)).append("*a").append(i - 1).append("]\n");
        }
        assertThat(refused(yaml + "merge_method: ties\nmodels: [a]\n"))
                .contains("more than " + ConfigYaml.MAX_COLLECTION_ALIASES + " aliases");
    }

    @Test
    void anAliasInsideTheNodeItNamesIsRefused() {
        assertThat(refused("merge_method: ties\nmodels: &m [a, *m]\n")).contains("ties.yml").contains("nests deeper");
    }

    @Test
    void deepNestingIsRefusedWithTheLimit() {
        String deep = "[".repeat(200) + "]".repeat(200);
        assertThat(refused("merge_method: ties\nmodels: " + deep + "\n"))
                .contains("nests deeper than " + ConfigYaml.MAX_DEPTH + " levels");
    }

    @Test
    void aHugeConfigIsRefusedWithTheLimit() {
        String huge = "merge_method: ties\nmodels: [a]\n" + "# padding\n".repeat(ConfigYaml.MAX_CHARACTERS / 10 + 1);
        assertThat(refused(huge)).contains("over the limit of " + ConfigYaml.MAX_CHARACTERS);
    }

    @Test
    void aKeyGivenTwiceIsAnError() {
        assertThat(refused("merge_method: ties\nmodels: [a]\nmerge_method: linear\n"))
                .contains("duplicate key merge_method");
    }
}
