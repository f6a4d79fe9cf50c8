package dev.amalgam.job;

import org.apache.spark.ExceptionFailure;
import org.apache.spark.TaskFailedReason;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Collects the distinct causes of failed task attempts while a merge runs, so a failed merge says
 * each cause once, in one line, instead of a stack trace per attempt (those go to the log).
 */
final class TaskFailures extends SparkListener {
    private static final int SHOWN = 5;
    private final Map<String, Integer> causes = new LinkedHashMap<>();

    @Override
    public void onTaskEnd(SparkListenerTaskEnd end) {
        if (end.reason() instanceof TaskFailedReason reason) {
            String cause = reason instanceof ExceptionFailure f ? f.description() : reason.toErrorString();
            cause = cause == null ? reason.getClass().getSimpleName() : cause.lines().findFirst().orElse(cause);
            synchronized (causes) {
                causes.merge(cause, 1, Integer::sum);
            }
        }
    }

    /** One line per distinct cause, most recent last; empty when no attempt failed. */
    List<String> lines() {
        List<String> lines = new ArrayList<>();
        synchronized (causes) {
            int shown = 0;
            for (Map.Entry<String, Integer> e : causes.entrySet()) {
                if (shown++ == SHOWN) {
                    lines.add("... and " + (causes.size() - SHOWN) + " more distinct causes");
                    break;
                }
                lines.add("task attempts failed " + e.getValue() + "x: " + e.getKey());
            }
        }
        return lines;
    }
}
