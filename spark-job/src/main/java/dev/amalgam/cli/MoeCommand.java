package dev.amalgam.cli;

import dev.amalgam.AmalgamException;
import dev.amalgam.job.MergeJob;
import org.apache.hadoop.conf.Configuration;
import picocli.CommandLine.Command;

/** {@code merge} for mixture-of-experts configs: the same options, the config's schema checked first. */
@Command(name = "moe", description = "Assembles a mixture-of-experts model from dense ones, as a mergekit-moe config "
        + "says (base_model, experts, gate_mode, architecture), into DESTINATION. A run that failed or was killed is "
        + "resumed by running the same command again.")
final class MoeCommand extends MergeCommand {

    @Override
    public Integer call() {
        // Checked before Spark starts: a merge config given here by mistake is named as such.
        if (MergeJob.parseConfig(new Configuration(), config).moe() == null) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, config + ": is a merge config (it has "
                    + "merge_method), not a mixture-of-experts config; run it with 'amalgam merge', or give "
                    + "base_model and experts here");
        }
        return super.call();
    }
}
