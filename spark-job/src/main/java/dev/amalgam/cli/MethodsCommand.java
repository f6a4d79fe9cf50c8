package dev.amalgam.cli;

import dev.amalgam.method.MethodTable;
import picocli.CommandLine.Command;

import java.util.concurrent.Callable;

@Command(name = "methods", description = "Lists every merge method with its inputs and parameters (a Markdown table).")
final class MethodsCommand implements Callable<Integer> {

    @Override
    public Integer call() {
        System.out.print(MethodTable.markdown());
        return 0;
    }
}
