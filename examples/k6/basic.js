// A k6 script as k6 users write it: `loadtest run examples/k6/basic.js`
// (start `loadtest target` first, or set BASE to your service).
import http from 'k6/http';
import { check, group, sleep } from 'k6';
import { Trend } from 'k6/metrics';

const BASE = __ENV.BASE || 'http://127.0.0.1:8080';
const orderTime = new Trend('order_time');

export const options = {
  vus: 5,
  duration: '5s',
  thresholds: {
    http_req_failed: ['rate<0.01'],
    http_req_duration: ['p(95)<500'],
    checks: ['rate>0.99'],
  },
};

export function setup() {
  const res = http.post(`${BASE}/login`, JSON.stringify({ user: 'ada' }), {
    headers: { 'Content-Type': 'application/json' },
  });
  return { token: res.json('token') };
}

export default function (data) {
  group('browse', () => {
    const res = http.get(`${BASE}/`);
    check(res, { 'home is 200': (r) => r.status === 200 });
  });
  group('order', () => {
    const res = http.post(`${BASE}/echo`, JSON.stringify({ vu: __VU, iter: __ITER }), {
      headers: { Authorization: `Bearer ${data.token}`, 'Content-Type': 'application/json' },
      tags: { name: 'order' },
    });
    orderTime.add(res.timings.duration);
    check(res, { 'order echoed': (r) => r.json('vu') === __VU });
  });
  sleep(0.1);
}
