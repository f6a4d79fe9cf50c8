package dev.amalgam.commit;

import dev.amalgam.job.MergeJob;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.MergeFixture;
import dev.amalgam.testing.TestSpark;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The HTML report of a merge, opened from disk by a real browser (Debian's headless Chromium,
 * which .ci/run installs): the charts are there once the page is parsed and laid out, and the
 * page loads nothing and logs no error.
 */
class HtmlReportInBrowserTest {
    @TempDir
    Path temp;

    private static Path browser() {
        for (String name : new String[]{"chromium-headless-shell", "chrome-headless-shell", "chromium"}) {
            for (String dir : new String[]{"/usr/bin", "/usr/lib/chromium"}) {
                Path p = Path.of(dir, name);
                if (Files.isExecutable(p)) {
                    return p;
                }
            }
        }
        return null;
    }

    private static String[] run(Path browser, Path workDir, String... args) throws Exception {
        List<String> command = new ArrayList<>(List.of(browser.toString(), "--headless", "--no-sandbox",
                "--disable-gpu", "--enable-logging=stderr", "--v=0", "--user-data-dir=" + workDir.resolve("profile")));
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).redirectError(workDir.resolve("browser.err").toFile()).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("the browser did not finish in 120 s");
        }
        return new String[]{out, Files.readString(workDir.resolve("browser.err"))};
    }

    @Test
    void theReportOpensFromDiskWithItsChartsAndNoErrors() throws Exception {
        Path browser = browser();
        if (browser == null) {
            // CI installs it (.ci/run); without it here, say what to install, and never pass silently in CI.
            assertThat(System.getenv("CI")).as("CI must have a browser: apt-get install chromium-headless-shell").isNull();
            Assumptions.abort("no headless Chromium here: apt-get install chromium-headless-shell");
        }
        MergeFixture f = MergeFixture.create(temp, Dtype.BF16, 2, Long.MAX_VALUE);
        String out = f.out("merged");
        new MergeJob(TestSpark.context()).run(MergeRequest.of(f.config("ties.yml", "merge_method: ties\nbase_model: "
                + f.base + "\nmodels:\n  - model: " + f.models.get(0) + "\n    parameters: {weight: 1.0, density: 0.5}\n"
                + "  - model: " + f.models.get(1) + "\n    parameters: {weight: 0.5, density: 0.7}\n"), out));
        Path page = Path.of(out, HtmlReport.FILE);
        String html = Files.readString(page);
        assertThat(html).doesNotContain("<script").doesNotContain("src=\"http").doesNotContain("href=\"http");

        String[] dom = run(browser, temp, "--dump-dom", page.toUri().toString());
        for (String chart : new String[]{"kept-density", "sign-conflicts", "delta-norms", "delta-cosines", "timings", "bytes",
                "backends"}) {
            assertThat(dom[0]).contains("<figure id=\"" + chart + "\"><svg");
        }
        assertEquals(7, dom[0].split("<svg", -1).length - 1, "seven charts");
        assertThat(dom[0]).contains("Kept density per layer").contains("model 2").contains("merge_method: ties");
        assertThat(dom[1]).doesNotContain("Uncaught").doesNotContain("ERR_FILE_NOT_FOUND").doesNotContain(":ERROR:CONSOLE");

        Path shot = temp.resolve("report.png");
        run(browser, temp, "--screenshot=" + shot, "--window-size=900,2400", page.toUri().toString());
        assertThat(Files.size(shot)).isGreaterThan(10_000);
        String keep = System.getProperty("amalgam.report.screenshot");
        if (keep != null) {
            Files.copy(shot, Path.of(keep), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
    }
}
