package dev.amalgam.job;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.amalgam.config.MergeConfig;
import dev.amalgam.format.Checkpoint;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.merge.ChunkReport;
import dev.amalgam.merge.MergeStage;
import dev.amalgam.plan.MergePlan;
import dev.amalgam.plan.Planner;
import dev.amalgam.plan.OutputQuantization;
import dev.amalgam.plan.TensorPlan;

import java.time.Instant;
import dev.amalgam.method.Parameter;
import dev.amalgam.method.ParameterTable;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/** The run report, amalgam-report.json: timings, bytes, and per-tensor statistics. */
final class RunReport {
    private RunReport() {
    }

    /**
     * How this run went, beside what it merged.
     *
     * @param assembly          how shards were put together: in-place (positioned writes), concat, executor-copy
     * @param resumed           whether a killed run's staging directory was continued
     * @param statisticsReused  whether that run's saved statistics were used instead of recomputed
     */
    record Run(String applicationId, String master, int partitions, boolean positioned, String assembly,
               String fingerprint, boolean resumed, boolean statisticsReused) {
    }

    static ObjectNode build(MergeRequest request, MergeConfig config, Planner.Planned planned, List<ChunkReport> chunks,
                            NonFiniteCounts nonFinite, MergeStage.Progress progress, long statisticsBytesRead, Map<String, Double> timings,
                            Instant startedAt, Run run, List<String> tokenizerFiles) {
        MergePlan plan = planned.plan();
        ObjectNode root = new ObjectMapper().createObjectNode();
        root.put("merge_method", config.mergeMethod());
        if (planned.moe() != null) {
            planned.moe().report(root.putObject("moe"));
        }
        if (planned.vocabulary() != null) {
            planned.vocabulary().report(root.putObject("vocabulary"),
                    config.tokenizerSource() == null ? "base" : config.tokenizerSource());
        }
        root.put("config_file", request.configFile());
        root.put("destination", request.destination());
        root.put("started_at", startedAt.toString());
        root.put("finished_at", Instant.now().toString());
        root.put("fingerprint", run.fingerprint());
        root.put("spark_application_id", run.applicationId());
        root.put("spark_master", run.master());
        root.put("chunk_elements", request.planOptions().chunkElements());
        root.put("chunks", plan.chunks().length);
        root.put("partitions", run.partitions());
        root.put("write_mode", run.positioned() ? "positioned" : "parts");
        root.put("shard_assembly", run.assembly());
        root.put("resumed", run.resumed());
        root.put("statistics_reused", run.statisticsReused());
        root.put("chunks_merged", chunks.stream().filter(c -> !c.reused()).count());
        root.put("chunks_reused", chunks.stream().filter(ChunkReport::reused).count());
        root.put("chunks_merged_in_retried_tasks", chunks.stream().filter(c -> !c.reused() && c.attempt() > 0).count());
        ObjectNode kernels = root.putObject("kernels");
        chunks.stream().collect(java.util.stream.Collectors.groupingBy(ChunkReport::kernels, java.util.TreeMap::new,
                java.util.stream.Collectors.counting())).forEach(kernels::put);
        root.put("random_seed", plan.settings().seed());
        ObjectNode t = root.putObject("timings_seconds");
        timings.forEach(t::put);
        root.put("input_bytes", plan.inputBytes());
        root.put("bytes_read", statisticsBytesRead + progress.bytesRead().value());
        root.put("bytes_read_statistics", statisticsBytesRead);
        root.put("bytes_read_merge", progress.bytesRead().value());
        root.put("bytes_written", progress.bytesWritten().value());
        root.put("output_bytes", plan.outputBytes());
        root.put("shards", plan.shards().length);
        ArrayNode tok = root.putArray("tokenizer_files");
        tokenizerFiles.forEach(tok::add);
        ArrayNode models = root.putArray("models");
        planned.modelNames().forEach(models::add);
        if (plan.tensors().length > 0 && plan.tensors()[0].base() != null) {
            root.put("base_model", planned.reference().directory());
        }

        ObjectNode nf = root.putObject("non_finite");
        nf.put("policy", request.nonFinite().cliName());
        long[] perInput = nonFinite.perInput();
        ArrayNode nfModels = nf.putArray("models");
        for (int i = 0; i < plan.modelCount(); i++) {
            nfModels.add(perInput[i]);
        }
        if (plan.tensors().length > 0 && plan.tensors()[0].base() != null) {
            nf.put("base_model", perInput[plan.modelCount()]);
        }
        nf.put("output", nonFinite.output());

        int m = plan.modelCount();
        long[][] kept = new long[plan.tensors().length][m];
        double[][] squares = new double[plan.tensors().length][m];
        double[][] dots = new double[plan.tensors().length][ChunkMetrics.pairs(m)];
        long[] conflicts = new long[plan.tensors().length];
        int[] iterations = new int[plan.tensors().length];
        List<ChunkReport> ordered = chunks.stream().sorted(Comparator.comparingInt(ChunkReport::chunk)).toList();
        for (ChunkReport r : ordered) {
            for (int i = 0; i < m; i++) {
                kept[r.tensor()][i] += r.kept()[i];
                squares[r.tensor()][i] += r.deltaSquares()[i];
            }
            for (int p = 0; p < r.deltaDots().length; p++) {
                dots[r.tensor()][p] += r.deltaDots()[p];
            }
            conflicts[r.tensor()] += r.signConflicts();
            iterations[r.tensor()] = Math.max(iterations[r.tensor()], r.iterations());
        }
        boolean deltas = plan.tensors().length > 0 && plan.tensors()[0].base() != null;
        ArrayNode tensors = root.putArray("tensors");
        for (TensorPlan tensor : plan.tensors()) {
            ObjectNode n = tensors.addObject();
            n.put("name", tensor.name());
            ArrayNode shape = n.putArray("shape");
            for (long d : tensor.shape()) {
                shape.add(d);
            }
            n.put("dtype", tensor.outDtype().safetensorsName());
            n.put("shard", plan.shards()[tensor.shard()].fileName());
            if (iterations[tensor.index()] > 0) {
                n.put("iterations", iterations[tensor.index()]);
            }
            long[] tensorNonFinite = nonFinite.ofTensor(tensor.index());
            if (java.util.Arrays.stream(tensorNonFinite).sum() + nonFinite.outputOf(tensor.index()) > 0) {
                ObjectNode tnf = n.putObject("non_finite");
                ArrayNode per = tnf.putArray("models");
                for (int i = 0; i < m; i++) {
                    per.add(tensorNonFinite[i]);
                }
                if (deltas) {
                    tnf.put("base_model", tensorNonFinite[m]);
                }
                tnf.put("output", nonFinite.outputOf(tensor.index()));
            }
            if (tensor.outQuantization() instanceof OutputQuantization.Scales sc) {
                n.put("scales_of", plan.tensors()[sc.weightTensor()].name());
            } else if (deltas) {
                double elements = Math.max(1, tensor.elements());
                n.put("sign_conflict_fraction", conflicts[tensor.index()] / elements);
                ArrayNode per = n.putArray("models");
                for (int i = 0; i < m; i++) {
                    ObjectNode pm = per.addObject();
                    pm.put("kept_density", kept[tensor.index()][i] / elements);
                    pm.put("delta_l2_norm", Math.sqrt(squares[tensor.index()][i]));
                    ArrayNode cosines = pm.putArray("delta_cosine");
                    for (int j = 0; j < m; j++) {
                        double cosine = cosine(squares[tensor.index()], dots[tensor.index()], i, j);
                        if (Double.isNaN(cosine)) {
                            cosines.addNull();
                        } else {
                            cosines.add(cosine);
                        }
                    }
                    List<Parameter> perModel = tensor.copy() ? List.of() : ParameterTable.of(planned.method()).perModel();
                    for (int p = 0; p < perModel.size(); p++) {
                        pm.put(perModel.get(p).name(), tensor.parameters().models()[i][p]);
                    }
                }
            }
        }
        return root;
    }

    /**
     * The cosine similarity of models {@code i} and {@code j}'s deltas from their squares and
     * pairwise dots: 1 for a model with itself, NaN where a delta is zero (no direction).
     */
    static double cosine(double[] squares, double[] dots, int i, int j) {
        if (squares[i] <= 0 || squares[j] <= 0) {
            return Double.NaN;
        }
        if (i == j) {
            return 1.0;
        }
        double dot = dots[ChunkMetrics.pair(Math.min(i, j), Math.max(i, j), squares.length)];
        // Summed in float lanes per block: clamp the last bits that could step outside [-1, 1].
        return Math.max(-1.0, Math.min(1.0, dot / Math.sqrt(squares[i] * squares[j])));
    }
}
