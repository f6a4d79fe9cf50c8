package dev.amalgam.commit;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.amalgam.AmalgamException;
import dev.amalgam.format.LocalFiles;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileAlreadyExistsException;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.File;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.file.Files;
import java.time.Duration;
import java.time.Instant;
import java.util.UUID;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * One writer per destination. The lock is a small JSON file beside the destination
 * ({@code .amalgam-lock-<name>}) naming its owner; it is created atomically (exclusive create),
 * refreshed by a heartbeat while the run lives, and removed when it ends.
 *
 * <p>A crashed run cannot release its lock, so a lock counts as abandoned, and is taken over,
 * when its owner is a process on this host that no longer exists, or when its heartbeat is
 * older than {@code staleAfter} (an owner on another host, which this host cannot probe).
 */
public final class DestinationLock implements AutoCloseable {
    public static final Duration DEFAULT_STALE_AFTER = Duration.ofMinutes(10);
    private static final Duration HEARTBEAT = Duration.ofSeconds(20);
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Who holds a lock; the JSON content of the lock file. */
    public record Owner(String runId, String host, long pid, String user, String startedAt, String purpose) {
    }

    private final FileSystem fs;
    private final Path file;
    private final Owner owner;
    private final ScheduledExecutorService heartbeat;

    private DestinationLock(FileSystem fs, Path file, Owner owner) {
        this.fs = fs;
        this.file = file;
        this.owner = owner;
        this.heartbeat = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "amalgam-lock-heartbeat");
            t.setDaemon(true);
            return t;
        });
        long period = HEARTBEAT.toMillis();
        heartbeat.scheduleAtFixedRate(this::beat, period, period, TimeUnit.MILLISECONDS);
    }

    /** The lock file that guards {@code destination}. */
    public static Path lockFile(Path destination) {
        return new Path(destination.getParent(), ".amalgam-lock-" + destination.getName());
    }

    public static DestinationLock acquire(Configuration hadoop, String destination, String purpose) {
        return acquire(hadoop, destination, purpose, DEFAULT_STALE_AFTER);
    }

    /**
     * Takes the lock of {@code destination}, or fails with {@link AmalgamException.Kind#BUSY}
     * naming the run that holds it.
     */
    public static DestinationLock acquire(Configuration hadoop, String destination, String purpose, Duration staleAfter) {
        Path dest;
        FileSystem fs;
        try {
            dest = new Path(destination);
            fs = LocalFiles.withoutChecksums(dest.getFileSystem(hadoop));
            dest = fs.makeQualified(dest);
            if (dest.getParent() == null) {
                throw new AmalgamException(AmalgamException.Kind.OUTPUT, destination
                        + ": is a file system root; choose a directory below it as the destination");
            }
            fs.mkdirs(dest.getParent());
        } catch (IOException e) {
            throw new AmalgamException(AmalgamException.Kind.OUTPUT, destination + ": cannot open its file system: "
                    + e.getMessage());
        }
        Path file = lockFile(dest);
        Owner owner = new Owner(UUID.randomUUID().toString(), hostName(), ProcessHandle.current().pid(),
                System.getProperty("user.name"), Instant.now().toString(), purpose);
        try {
            for (int attempt = 0; attempt < 3; attempt++) {
                if (createExclusive(fs, file, owner)) {
                    return new DestinationLock(fs, file, owner);
                }
                FileStatus status;
                Owner holder;
                try {
                    status = fs.getFileStatus(file);
                    holder = read(fs, file);
                } catch (FileNotFoundException released) {
                    continue;
                }
                Duration age = Duration.ofMillis(Math.max(0, System.currentTimeMillis() - status.getModificationTime()));
                String abandoned = abandonedBecause(holder, age, staleAfter);
                if (abandoned == null) {
                    throw new AmalgamException(AmalgamException.Kind.BUSY, dest + ": another run is writing here: "
                            + describe(holder) + ", last heartbeat " + age.toSeconds() + " s ago. Wait for it to "
                            + "finish; if it is dead, remove " + file + " (a lock without heartbeat for "
                            + staleAfter.toMinutes() + " min is taken over automatically)");
                }
                // Move the stale lock aside first: of several runs taking it over, exactly one rename wins.
                Path aside = new Path(file.getParent(), file.getName() + ".stale-" + owner.runId());
                if (fs.rename(file, aside)) {
                    fs.delete(aside, false);
                    System.err.println("amalgam: took over the lock of " + dest + " from " + describe(holder)
                            + ": " + abandoned);
                }
            }
        } catch (IOException e) {
            throw new AmalgamException(AmalgamException.Kind.OUTPUT, file + ": cannot take the destination's lock: "
                    + e.getMessage());
        }
        throw new AmalgamException(AmalgamException.Kind.BUSY, dest + ": other runs keep taking the lock " + file
                + "; try again later");
    }

    public Owner owner() {
        return owner;
    }

    /** Removes the lock if it is still this run's. */
    @Override
    public void close() {
        heartbeat.shutdownNow();
        try {
            Owner current = read(fs, file);
            if (current != null && owner.runId().equals(current.runId())) {
                fs.delete(file, false);
            }
        } catch (IOException ignored) {
            // Gone or unreadable: nothing of ours to remove; a leftover lock is reclaimed as stale.
        }
    }

    private void beat() {
        try {
            fs.setTimes(file, System.currentTimeMillis(), -1);
        } catch (IOException ignored) {
            // A missed beat only brings the lock closer to looking stale; the next beat retries.
        }
    }

    private static String abandonedBecause(Owner holder, Duration age, Duration staleAfter) {
        if (holder == null) {
            return age.compareTo(Duration.ofMinutes(1)) > 0 ? "its content is unreadable" : null;
        }
        if (holder.host().equals(hostName()) && ProcessHandle.of(holder.pid()).map(p -> !p.isAlive()).orElse(true)) {
            return "process " + holder.pid() + " no longer exists";
        }
        if (age.compareTo(staleAfter) > 0) {
            return "no heartbeat for " + age.toSeconds() + " s";
        }
        return null;
    }

    private static String describe(Owner holder) {
        if (holder == null) {
            return "an unreadable lock";
        }
        return "run " + holder.runId() + " (" + holder.purpose() + ", pid " + holder.pid() + " on " + holder.host()
                + ", user " + holder.user() + ", started " + holder.startedAt() + ")";
    }

    /** Exclusive create: the file system refuses it if the file exists, so two runs cannot both win. */
    private static boolean createExclusive(FileSystem fs, Path file, Owner owner) throws IOException {
        byte[] content = JSON.writeValueAsBytes(owner);
        if ("file".equals(file.toUri().getScheme())) {
            // The raw local file system checks and creates in two steps; O_EXCL does it in one.
            File local = new File(file.toUri());
            try {
                Files.createFile(local.toPath());
            } catch (java.nio.file.FileAlreadyExistsException e) {
                return false;
            }
            Files.write(local.toPath(), content);
            return true;
        }
        try (FSDataOutputStream out = fs.create(file, false)) {
            out.write(content);
            return true;
        } catch (FileAlreadyExistsException e) {
            return false;
        } catch (IOException e) {
            if (fs.exists(file)) {
                return false;
            }
            throw e;
        }
    }

    private static Owner read(FileSystem fs, Path file) throws IOException {
        try (FSDataInputStream in = fs.open(file)) {
            byte[] bytes = in.readAllBytes();
            try {
                return JSON.readValue(bytes, Owner.class);
            } catch (IOException unreadable) {
                return null;
            }
        }
    }

    private static String hostName() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            return "unknown-host";
        }
    }
}
