//! Prometheus metrics for `/metrics` (a placeholder; the metrics module replaces it).

/// The OpenMetrics text of the server's metrics.
pub(crate) fn render(_shared: &crate::exec::Shared) -> String {
    String::new()
}
