package dev.amalgam.cli;

import picocli.CommandLine;

/** Parses byte sizes the way users write them: 500M, 2G, 5GB, 1000000 (decimal units, as the hub uses). */
final class Sizes implements CommandLine.ITypeConverter<Long> {
    @Override
    public Long convert(String value) {
        String v = value.trim().toUpperCase().replace("IB", "").replace("B", "");
        long unit = 1;
        char last = v.isEmpty() ? ' ' : v.charAt(v.length() - 1);
        switch (last) {
            case 'K' -> unit = 1_000L;
            case 'M' -> unit = 1_000_000L;
            case 'G' -> unit = 1_000_000_000L;
            case 'T' -> unit = 1_000_000_000_000L;
            default -> {
            }
        }
        String number = unit == 1 ? v : v.substring(0, v.length() - 1);
        try {
            double n = Double.parseDouble(number);
            if (n <= 0) {
                throw new CommandLine.TypeConversionException("'" + value + "' must be positive");
            }
            return (long) (n * unit);
        } catch (NumberFormatException e) {
            throw new CommandLine.TypeConversionException("'" + value + "' is not a size like 500M, 2G or 5GB");
        }
    }
}
