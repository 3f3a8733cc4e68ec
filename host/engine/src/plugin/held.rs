//! Responses from `send-held` whose headers and body stay on the host until
//! the guest reads them. A k6 script that only checks the status never
//! pays for copying them into the guest and turning them into JavaScript
//! strings (a third of the guest's CPU per request when it did).
//!
//! They belong to one instance: the guest's handles are indexes here, and
//! a replaced instance's are dropped with it. What is held may not pass
//! the VU's memory limit (apart from its linear memory, which has the same
//! limit), so a guest that keeps every response without dropping it is
//! stopped as one that copied them in would be.

use super::sandbox::Violation;
use bytes::Bytes;

/// The headers and body of one response.
pub struct Rest {
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// The connection that answered.
    pub peer: Option<crate::client::Peer>,
}

/// What holding a response costs beyond its bytes: its slot here and the
/// handle in wasmtime's table. Counted so that a guest that keeps empty
/// responses (`discard-body`, `discard-headers`) still meets the limit.
const PER_RESPONSE: usize = 128;

impl Rest {
    fn size(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 48)
            .sum();
        PER_RESPONSE + headers + self.body.len()
    }
}

/// The VU's held responses, by the handle the guest has.
#[derive(Default)]
pub struct Held {
    slots: Vec<Option<(Rest, usize)>>,
    free: Vec<u32>,
    bytes: usize,
    /// The VU's memory limit (`sandbox.memoryMb`); 0 until an instance sets it.
    pub limit: usize,
}

impl Held {
    /// Keeps `rest` and gives its handle, or the violation of holding
    /// more than the VU may.
    pub fn keep(&mut self, rest: Rest) -> Result<u32, Violation> {
        let size = rest.size();
        if self.limit > 0 && self.bytes + size > self.limit {
            return Err(Violation::Held {
                held: self.bytes + size,
                responses: self.slots.len() - self.free.len() + 1,
                limit: self.limit,
            });
        }
        self.bytes += size;
        match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some((rest, size));
                Ok(i)
            }
            None => {
                self.slots.push(Some((rest, size)));
                Ok((self.slots.len() - 1) as u32)
            }
        }
    }

    /// The response behind a handle the guest still holds.
    pub fn get(&self, handle: u32) -> Option<&Rest> {
        self.slots.get(handle as usize)?.as_ref().map(|(r, _)| r)
    }

    pub fn release(&mut self, handle: u32) {
        let Some(slot) = self.slots.get_mut(handle as usize) else {
            return;
        };
        if let Some((_, size)) = slot.take() {
            self.bytes -= size;
            self.free.push(handle);
        }
    }

    /// Forgets every response, and the room they took: their instance is
    /// gone.
    pub fn clear(&mut self) {
        *self = Held {
            limit: self.limit,
            ..Held::default()
        };
    }

    #[cfg(test)]
    fn live(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rest(body: usize) -> Rest {
        Rest {
            headers: vec![("content-type".into(), "text/plain".into())],
            body: Bytes::from(vec![b'x'; body]),
            peer: None,
        }
    }

    #[test]
    fn handles_are_reused_after_release_and_bytes_return() {
        let mut held = Held {
            limit: 10_000,
            ..Held::default()
        };
        let a = held.keep(rest(100)).unwrap();
        let b = held.keep(rest(100)).unwrap();
        assert_ne!(a, b);
        held.release(a);
        held.release(a); // twice is harmless
        assert!(held.get(a).is_none());
        assert_eq!(held.get(b).unwrap().body.len(), 100);
        let c = held.keep(rest(100)).unwrap();
        assert_eq!(c, a, "a released handle is reused");
        assert_eq!(held.live(), 2);
        held.release(b);
        held.release(c);
        assert_eq!(held.bytes, 0);
    }

    #[test]
    fn empty_responses_count_too() {
        let mut held = Held {
            limit: 100 * PER_RESPONSE,
            ..Held::default()
        };
        let empty = || Rest {
            headers: Vec::new(),
            body: Bytes::new(),
            peer: None,
        };
        for _ in 0..100 {
            held.keep(empty()).unwrap();
        }
        assert!(held.keep(empty()).is_err(), "the 101st passes the limit");
    }

    #[test]
    fn holding_past_the_memory_limit_is_a_violation_that_says_how_much() {
        let mut held = Held {
            limit: 1_000,
            ..Held::default()
        };
        held.keep(rest(600)).unwrap();
        let e = held.keep(rest(600)).unwrap_err().to_string();
        assert!(e.contains("2 responses"), "{e}");
        assert!(e.contains("sandbox.memoryMb"), "{e}");
        // Dropping one makes room again.
        held.release(0);
        held.keep(rest(600)).unwrap();
    }
}
