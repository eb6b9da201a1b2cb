//! The compare chart: a PNG with two grouped bar panels, median throughput and median p99
//! per workload, one bar per server.
//!
//! Drawn with plotters' in-memory bitmap backend and the pure-Rust ab_glyph text renderer,
//! then encoded with the `png` crate, so no C library and no `image` crate is needed. The
//! font comes from Debian's fonts-dejavu-core at run time (not a committed file); without it
//! the chart is skipped and the table still written.

use std::path::Path;

use anyhow::{Context, anyhow};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

/// Where Debian's fonts-dejavu-core puts the font.
const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const WIDTH: u32 = 1200;
const HEIGHT: u32 = 900;

/// Bar colours per server, in server order (colour-blind-friendly Okabe–Ito palette).
const COLOURS: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(204, 121, 167),
    RGBColor(213, 94, 0),
    RGBColor(120, 120, 120),
    RGBColor(0, 158, 115),
    RGBColor(86, 180, 233),
    RGBColor(240, 228, 66),
];

fn load_font() -> anyhow::Result<()> {
    static LOADED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    LOADED
        .get_or_init(|| {
            let bytes = std::fs::read(FONT_PATH).map_err(|e| {
                format!("reading {FONT_PATH} ({e}); install the Debian package fonts-dejavu-core")
            })?;
            // plotters keeps registered fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| format!("{FONT_PATH} is not a font"))
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

/// Draws the chart into `path`. `ops[w][s]` and `p99[w][s]` are the medians of workload `w`
/// on server `s` (`None`: not run).
pub fn draw(
    path: &Path,
    workloads: &[String],
    servers: &[String],
    ops: &[Vec<Option<f64>>],
    p99: &[Vec<Option<f64>>],
) -> anyhow::Result<()> {
    load_font()?;
    let mut pixels = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
        let (top, bottom) = root.split_vertically(HEIGHT / 2);
        panel(
            &top,
            "median throughput (k ops/s, higher is better)",
            workloads,
            servers,
            ops,
            1e-3,
            true,
        )?;
        panel(
            &bottom,
            "median p99 latency (ms, lower is better)",
            workloads,
            servers,
            p99,
            1.0,
            false,
        )?;
        root.present().map_err(|e| anyhow!("{e:?}"))?;
    }
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&pixels)?;
    Ok(())
}

fn panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    caption: &str,
    workloads: &[String],
    servers: &[String],
    values: &[Vec<Option<f64>>],
    scale: f64,
    legend: bool,
) -> anyhow::Result<()> {
    let top = values
        .iter()
        .flatten()
        .flatten()
        .fold(0.0f64, |a, &b| a.max(b * scale));
    // Headroom above the tallest bar keeps the legend (upper right) clear of the bars.
    let y_max = if top > 0.0 {
        top * if legend { 1.5 } else { 1.15 }
    } else {
        1.0
    };
    let groups = workloads.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..groups, 0.0..y_max)
        .map_err(|e| anyhow!("{e:?}"))?;
    let names = workloads.to_vec();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(workloads.len() * 2 + 1)
        .x_label_formatter(&|x| {
            // Name each group at its centre (x = i + 0.5); no label elsewhere.
            let i = x.floor();
            if (x - i - 0.5).abs() < 1e-6 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        // Enough decimals that neighbouring ticks of a small range (p99 in ms) differ.
        .y_label_formatter(&|y| {
            if y_max >= 20.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.1}")
            }
        })
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| anyhow!("{e:?}"))?;
    let n = servers.len().max(1) as f64;
    let bar = 0.8 / n;
    for (s, server) in servers.iter().enumerate() {
        let colour = COLOURS[s % COLOURS.len()];
        let bars = values.iter().enumerate().filter_map(|(w, row)| {
            let v = (*row.get(s)?)? * scale;
            let x0 = w as f64 + 0.1 + s as f64 * bar;
            Some(Rectangle::new(
                [(x0, 0.0), (x0 + bar * 0.9, v)],
                colour.filled(),
            ))
        });
        let series = chart.draw_series(bars).map_err(|e| anyhow!("{e:?}"))?;
        if legend {
            series.label(server.as_str()).legend(move |(x, y)| {
                Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled())
            });
        }
    }
    if legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(|e| anyhow!("{e:?}"))?;
    }
    Ok(())
}
