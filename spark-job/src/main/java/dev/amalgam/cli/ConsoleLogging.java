package dev.amalgam.cli;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LoggerContext;

/**
 * What reaches the user's terminal: Amalgam's own messages, while Spark's and Hadoop's output,
 * stack traces included, goes to the log file (conf/log4j2.properties, which scripts/amalgam
 * and scripts/submit name with -Dlog4j2.configurationFile), unless {@code --verbose}.
 */
final class ConsoleLogging {
    static final String LOG_FILE = "amalgam.log.file";

    private ConsoleLogging() {
    }

    /** Stack traces and Spark's warnings on stderr too. */
    static void verbose() {
        System.setProperty("amalgam.verbose", "true");
        System.setProperty("amalgam.console.level", "warn");
        // Only Amalgam's configuration reads these properties; reloading it applies them.
        if (LogManager.getContext(false) instanceof LoggerContext context
                && "amalgam".equals(context.getConfiguration().getName())) {
            context.reconfigure();
        }
    }
}
