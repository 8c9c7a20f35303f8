import assert from 'node:assert/strict';
import { redactSecrets, redactUrl, redactUrls } from '../src/index.js';

describe('redact: secrets out of what we show', () => {
  it('redactUrl hides a userinfo password and credential query parameters, and keeps the rest', () => {
    assert.equal(redactUrl('https://user:secret@unleash.example.com/api'), 'https://user:***@unleash.example.com/api');
    assert.equal(
      redactUrl('postgres://app:p%40ss@db.internal:5432/orders?sslmode=require'),
      'postgres://app:***@db.internal:5432/orders?sslmode=require',
    );
    assert.equal(
      redactUrl('https://h/api?token=abc&env=dev&API_KEY=xyz'),
      'https://h/api?token=***&env=dev&API_KEY=***',
    );
    assert.equal(redactUrl('https://unleash.example.com/api'), 'https://unleash.example.com/api');
    assert.equal(redactUrl('https://ops:pw@unleash.example.com'), 'https://ops:***@unleash.example.com', 'as written');
    assert.equal(redactUrl('postgres://app:s3cret pw@db/app'), 'postgres://app:***@db/app');
    assert.equal(redactUrl('not a url user:pw@x'), 'not a url user:pw@x');
  });

  it('redactUrls scrubs every URL inside a message', () => {
    assert.equal(
      redactUrls('GET https://u:s3cret@h/api/client/features?access_token=t0k responded 401'),
      'GET https://u:***@h/api/client/features?access_token=*** responded 401',
    );
  });

  it('redactSecrets removes the named secrets (also JSON- and URL-encoded), Authorization values, and caps the length', () => {
    const token = '*:*.0123456789abcdef';
    const body = JSON.stringify({
      headers: { authorization: 'Bearer other-thing', 'x-token': token },
      url: `/x?t=${encodeURIComponent(token)}`,
    });
    const out = redactSecrets(body, { secrets: [token, '', undefined, 'ab'] });
    assert.ok(!out.includes('0123456789abcdef'), out);
    assert.ok(!out.includes('other-thing'), out);
    assert.match(out, /"authorization":"\*\*\*"/);
    const long = redactSecrets('x'.repeat(1000), { maxLength: 100 });
    assert.equal(long, `${'x'.repeat(100)}… (900 more characters)`);
  });
});
