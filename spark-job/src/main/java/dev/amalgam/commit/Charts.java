package dev.amalgam.commit;

import org.jfree.chart.JFreeChart;
import org.jfree.chart.plot.CategoryPlot;
import org.jfree.chart.plot.XYPlot;
import org.jfree.svg.SVGGraphics2D;

import java.awt.Color;
import java.awt.Rectangle;

/** Charts as inline SVG for Amalgam's HTML pages (the run report, the checkpoint diff). */
public final class Charts {
    public static final int WIDTH = 760;
    static final int HEIGHT = 320;

    private Charts() {
    }

    /** White plots with grey grid lines: readable on screen and on paper. */
    public static JFreeChart styled(JFreeChart chart) {
        chart.getPlot().setBackgroundPaint(Color.WHITE);
        if (chart.getPlot() instanceof XYPlot xy) {
            xy.setDomainGridlinePaint(Color.LIGHT_GRAY);
            xy.setRangeGridlinePaint(Color.LIGHT_GRAY);
        } else if (chart.getPlot() instanceof CategoryPlot category) {
            category.setRangeGridlinePaint(Color.LIGHT_GRAY);
        }
        return chart;
    }

    /** The chart drawn into an SVG element inside a figure with {@code id}. */
    public static String figure(String id, JFreeChart chart) {
        SVGGraphics2D g = new SVGGraphics2D(WIDTH, HEIGHT);
        // Ids inside each SVG (clip paths) are prefixed, so the inlined charts do not share them.
        g.setDefsKeyPrefix(id);
        chart.draw(g, new Rectangle(WIDTH, HEIGHT));
        return "<figure id=\"" + id + "\">" + g.getSVGElement(id + "-svg") + "</figure>\n";
    }

    public static String escape(String text) {
        StringBuilder b = new StringBuilder(text.length());
        for (char c : text.toCharArray()) {
            switch (c) {
                case '<' -> b.append("&lt;");
                case '>' -> b.append("&gt;");
                case '&' -> b.append("&amp;");
                case '"' -> b.append("&quot;");
                default -> b.append(c);
            }
        }
        return b.toString();
    }
}
