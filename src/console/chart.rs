//! The chart of audit events per day, drawn on the server as SVG (no script, no fetched library).

use maud::{Markup, html};

/// Bars of `(label, count)`, oldest first, described for screen readers by `title`.
pub fn bars(title: &str, days: &[(String, i64)]) -> Markup {
    const WIDTH: i64 = 720;
    const HEIGHT: i64 = 220;
    const LEFT: i64 = 48;
    const BOTTOM: i64 = 28;
    let max = days.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let slots = i64::try_from(days.len()).unwrap_or(1).max(1);
    let slot = (WIDTH - LEFT) / slots;
    let plot = HEIGHT - BOTTOM - 10;
    let total: i64 = days.iter().map(|(_, n)| *n).sum();
    html! {
        svg.chart role="img" aria-label=(title) viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) width=(WIDTH) height=(HEIGHT) xmlns="http://www.w3.org/2000/svg" {
            title { (title) ": " (total) " in all" }
            line.axis x1=(LEFT) y1=(HEIGHT - BOTTOM) x2=(WIDTH) y2=(HEIGHT - BOTTOM) {}
            text x="0" y="14" { (max) }
            text x="0" y=(HEIGHT - BOTTOM) { "0" }
            @for (i, (label, count)) in days.iter().enumerate() {
                @let i = i64::try_from(i).unwrap_or(0);
                @let h = count * plot / max;
                @let x = LEFT + i * slot + 1;
                rect.bar x=(x) y=(HEIGHT - BOTTOM - h) width=((slot - 2).max(1)) height=(h) {
                    title { (label) ": " (count) }
                }
                @if i % 5 == 0 {
                    text x=(x) y=(HEIGHT - 8) { (label.get(5..).unwrap_or(label)) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_busiest_day_and_say_what_they_show() {
        let days = vec![("2026-12-01".to_owned(), 5), ("2026-12-02".to_owned(), 10), ("2026-12-03".to_owned(), 0)];
        let svg = bars("Audit events per day", &days).into_string();
        assert!(svg.contains(r#"role="img""#) && svg.contains(r#"aria-label="Audit events per day""#));
        assert!(svg.contains("15 in all"));
        assert!(svg.contains("<title>2026-12-02: 10</title>"));
        assert_eq!(svg.matches("<rect").count(), 3);
        // The busiest day fills the plot (182 units), half as busy is half as tall.
        assert!(svg.contains(r#"height="182""#) && svg.contains(r#"height="91""#));
    }
}
