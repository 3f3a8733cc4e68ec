//! Cookie jars a guest makes for itself (k6's `new http.CookieJar()`),
//! beside the VU's own. A request uses one while `use-jar` names it: the
//! session's jar is swapped for it and the VU's own is parked here, so the
//! client's request path stays as it is.

use super::sandbox::Violation;
use crate::client::Jar;

/// How many jars one VU may hold at once: a script that makes one per
/// iteration frees it (QuickJS drops the object, the guest the handle);
/// one that keeps every jar is stopped rather than let grow.
pub const MAX_JARS: usize = 1024;

#[derive(Default)]
pub struct Jars {
    slots: Vec<Option<Jar>>,
    free: Vec<u32>,
    /// The VU's own jar while the session uses one of these.
    parked: Option<Jar>,
}

impl Jars {
    /// A new empty jar and its handle, or the violation of holding too many.
    pub fn make(&mut self) -> Result<u32, Violation> {
        if self.slots.len() - self.free.len() >= MAX_JARS {
            return Err(Violation::Jars(MAX_JARS));
        }
        match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(Jar::default());
                Ok(i)
            }
            None => {
                self.slots.push(Some(Jar::default()));
                Ok((self.slots.len() - 1) as u32)
            }
        }
    }

    pub fn get(&self, handle: u32) -> Option<&Jar> {
        self.slots.get(handle as usize)?.as_ref()
    }

    pub fn release(&mut self, handle: u32) {
        if let Some(slot @ Some(_)) = self.slots.get_mut(handle as usize) {
            *slot = None;
            self.free.push(handle);
        }
    }

    /// Puts `jar` in the session's place (`Some`), or the VU's own jar
    /// back (`None`). A jar in use stays in use after its handle is
    /// dropped, as a request in flight keeps it.
    pub fn swap_into(&mut self, session_jar: &mut Jar, jar: Option<Jar>) {
        match jar {
            Some(j) => {
                let own = std::mem::replace(session_jar, j);
                self.parked.get_or_insert(own);
            }
            None => {
                if let Some(own) = self.parked.take() {
                    *session_jar = own;
                }
            }
        }
    }

    #[cfg(test)]
    fn live(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use url::Url;

    #[test]
    fn the_vu_jar_comes_back_after_any_number_of_swaps() {
        let url = Url::parse("http://example.test/").unwrap();
        let mut jars = Jars::default();
        let mut session = Jar::default();
        session.set(&url, "own=1").unwrap();
        let (a, b) = (jars.make().unwrap(), jars.make().unwrap());
        jars.swap_into(&mut session, jars.get(a).cloned());
        session.set(&url, "a=1").unwrap();
        jars.swap_into(&mut session, jars.get(b).cloned());
        assert!(session.get(&url).is_empty(), "b is a jar of its own");
        jars.swap_into(&mut session, None);
        assert_eq!(session.get(&url), [("own".into(), "1".into())]);
        jars.swap_into(&mut session, None);
        assert_eq!(session.get(&url).len(), 1, "a second None changes nothing");
        assert_eq!(jars.get(a).unwrap().get(&url), [("a".into(), "1".into())]);
    }

    #[test]
    fn handles_are_reused_and_the_count_is_capped() {
        let mut jars = Jars::default();
        let handles: Vec<u32> = (0..MAX_JARS).map(|_| jars.make().unwrap()).collect();
        assert!(matches!(jars.make(), Err(Violation::Jars(MAX_JARS))));
        jars.release(handles[7]);
        jars.release(handles[7]);
        assert_eq!(jars.live(), MAX_JARS - 1);
        assert_eq!(jars.make().unwrap(), handles[7]);
    }
}
