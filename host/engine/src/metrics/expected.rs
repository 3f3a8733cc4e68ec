//! Which responses a VU expects (k6's response callback): the host judges
//! every response as it records it, so `http_req_failed` and the
//! `expected_response` tag mean what they mean in k6.

use std::sync::Arc;

/// The status ranges a VU expects (inclusive), or `None` when the script
/// turned judging off (k6's `setResponseCallback(null)`).
#[derive(Debug, Clone)]
pub struct Expected(Option<Arc<[(u16, u16)]>>);

/// k6's default: a 2xx or 3xx status.
const DEFAULT: (u16, u16) = (200, 399);

impl Default for Expected {
    fn default() -> Self {
        Expected(Some(Arc::new([DEFAULT])))
    }
}

impl Expected {
    pub fn new(ranges: Option<Vec<(u16, u16)>>) -> Self {
        Expected(ranges.map(Into::into))
    }

    /// Whether a response with `status` (none: no response) and `error`
    /// was expected; none when nothing is judged.
    pub fn judge(&self, status: Option<u16>, error: Option<&str>) -> Option<bool> {
        let ranges = self.0.as_ref()?;
        let within = |s: u16| ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&s));
        Some(error.is_none() && status.is_some_and(within))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_expects_2xx_and_3xx_and_a_response() {
        let e = Expected::default();
        assert_eq!(e.judge(Some(200), None), Some(true));
        assert_eq!(e.judge(Some(399), None), Some(true));
        assert_eq!(e.judge(Some(404), None), Some(false));
        assert_eq!(e.judge(Some(199), None), Some(false));
        assert_eq!(e.judge(None, Some("timeout")), Some(false));
        assert_eq!(e.judge(Some(200), Some("body_too_large")), Some(false));
    }

    #[test]
    fn ranges_replace_the_default_and_none_judges_nothing() {
        let e = Expected::new(Some(vec![(404, 404), (200, 204)]));
        assert_eq!(e.judge(Some(404), None), Some(true));
        assert_eq!(e.judge(Some(205), None), Some(false));
        assert_eq!(e.judge(Some(302), None), Some(false));
        let off = Expected::new(None);
        assert_eq!(off.judge(Some(500), None), None);
        assert_eq!(off.judge(None, Some("connect")), None);
    }
}
