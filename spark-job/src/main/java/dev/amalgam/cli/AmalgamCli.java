package dev.amalgam.cli;

import dev.amalgam.AmalgamException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code amalgam} command. Exit codes: 0 success, 1 unexpected failure, 2 bad config or
 * command line, 3 bad input checkpoint, 4 destination refused, 5 the job failed (nothing published), 6 another
 * run holds the destination's lock.
 */
@Command(name = "amalgam", mixinStandardHelpOptions = true, version = "amalgam 0.1.0",
        description = "Merges large-language-model checkpoints on Spark.",
        subcommands = {MergeCommand.class, MoeCommand.class, PlanCommand.class, DiffCommand.class, NightlyCommand.class, InspectCommand.class, MethodsCommand.class, DemoCommand.class,
                BenchCommand.class},
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {"0:success", "1:unexpected failure", "2:bad merge config or command line",
                "3:bad input checkpoint", "4:destination refused", "5:the job failed; nothing was published",
                "6:another run is writing to the destination (locked)"})
public final class AmalgamCli implements Runnable {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(AmalgamCli.class);

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @CommandLine.Option(names = "--verbose", scope = CommandLine.ScopeType.INHERIT,
            description = "print stack traces and Spark's warnings on stderr too (the log file always has them)")
    void verbose(boolean on) {
        if (on) {
            ConsoleLogging.verbose();
        }
    }

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "name a command: merge, plan, diff, nightly, inspect, methods, demo or bench");
    }

    public static int execute(String... args) {
        CommandLine cli = new CommandLine(new AmalgamCli());
        cli.setExecutionExceptionHandler((e, commandLine, parsed) -> {
            String log = System.getProperty(ConsoleLogging.LOG_FILE);
            if (e instanceof AmalgamException a) {
                for (String problem : a.problems()) {
                    commandLine.getErr().println("amalgam: error: " + problem);
                }
                if (a.getCause() != null) {
                    LOG.error("{} failed", a.kind(), a);
                    if (log != null) {
                        commandLine.getErr().println("amalgam: details, stack traces included, in " + log);
                    }
                }
                return a.kind().exitCode();
            }
            commandLine.getErr().println("amalgam: unexpected failure: " + e);
            // The stack trace belongs in the log (stderr shows the one line above).
            LOG.error("unexpected failure", e);
            if (log != null) {
                commandLine.getErr().println("amalgam: the stack trace is in " + log);
            } else {
                e.printStackTrace(commandLine.getErr());
            }
            return 1;
        });
        return cli.execute(args);
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }
}
