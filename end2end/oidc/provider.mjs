// The demo and test OpenID provider: npm `oidc-provider` (a certified
// implementation) with Paved's demo users from demo/users.json, each with a
// `groups` claim. A small sign-in form checks their passwords.
//
// Environment: OIDC_PORT (default 4400), PAVED_PUBLIC_URL (default
// http://127.0.0.1:3000), PAVED_OIDC_CLIENT_ID / PAVED_OIDC_CLIENT_SECRET
// (defaults paved / paved-demo-secret).
import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Provider from 'oidc-provider';

const here = fileURLToPath(new URL('.', import.meta.url));
const users = JSON.parse(readFileSync(`${here}/../../demo/users.json`, 'utf8'));
const port = Number(process.env.OIDC_PORT || 4400);
const issuer = `http://127.0.0.1:${port}`;
const publicUrl = (process.env.PAVED_PUBLIC_URL || 'http://127.0.0.1:3000').replace(/\/$/, '');
const clientId = process.env.PAVED_OIDC_CLIENT_ID || 'paved';
const clientSecret = process.env.PAVED_OIDC_CLIENT_SECRET || 'paved-demo-secret';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'demo-1', use: 'sig', alg: 'RS256' };

const html = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [`${publicUrl}/auth/callback`],
    post_logout_redirect_uris: [`${publicUrl}/signin?signed_out=1`],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  // Put the scope's claims in the ID token, which is what Paved reads.
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource: async (ctx, form) => {
        ctx.body = page('Sign out', `<p>Sign out of the demo identity provider too?</p>${form}
          <button type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>`);
      },
      postLogoutSuccessSource: async (ctx) => {
        ctx.body = page('Signed out', '<p>You have signed out.</p>');
      },
    },
  },
  async findAccount(ctx, id) {
    const user = users.find((u) => u.username === id);
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: user.email, email_verified: true, name: user.name, groups: user.groups };
      },
    };
  },
  // First-party client: no consent screen; grant the requested scopes.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid email profile groups');
    await grant.save();
    return grant;
  },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = page('Error', `<p>${html(out.error)}: ${html(out.error_description || '')}</p>`);
  },
});

// Test and demo servers listen on any loopback port; allow their callbacks
// wherever only the port differs from the registered one.
const stripPort = (u) => { try { const x = new URL(u); if (!['127.0.0.1', 'localhost'].includes(x.hostname)) return null; x.port = ''; return x.href; } catch { return null; } };
const loopbackAllowed = (value, allowed) => { const v = stripPort(value); return v !== null && allowed.some((a) => stripPort(a) === v); };
const { redirectUriAllowed, postLogoutRedirectUriAllowed } = provider.Client.prototype;
provider.Client.prototype.redirectUriAllowed = function (v) { return redirectUriAllowed.call(this, v) || loopbackAllowed(v, this.redirectUris); };
provider.Client.prototype.postLogoutRedirectUriAllowed = function (v) { return postLogoutRedirectUriAllowed.call(this, v) || loopbackAllowed(v, this.postLogoutRedirectUris); };

function page(title, body) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${html(title)} · Demo identity provider</title>
<style>body{font-family:system-ui,sans-serif;background:#f1f5f9;display:flex;min-height:100vh;align-items:center;justify-content:center;margin:0}
main{background:#fff;padding:2rem;border-radius:12px;box-shadow:0 1px 3px #0002;width:min(360px,90vw)}label{display:block;margin:.75rem 0 .25rem;font-weight:600}
input{width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #cbd5e1;border-radius:6px}button{margin-top:1rem;width:100%;padding:.6rem;border:0;border-radius:6px;background:#4f46e5;color:#fff;font-weight:600}
.error{color:#b91c1c}</style></head><body><main><h1>${html(title)}</h1>${body}</main></body></html>`;
}

function loginForm(uid, error, username = '') {
  return page('Demo identity provider', `<p>Sign in to continue to Paved.</p>
${error ? `<p class="error" role="alert">${html(error)}</p>` : ''}
<form method="post" action="/interaction/${html(uid)}/login" autocomplete="off">
<label for="username">Username</label><input id="username" name="username" value="${html(username)}" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" required>
<button type="submit">Sign in</button></form>`);
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return Object.fromEntries(new URLSearchParams(body));
}

const callback = provider.callback();
const server = createServer(async (req, res) => {
  const match = req.url.match(/^\/interaction\/([^/?]+)(\/login)?/);
  if (!match) return callback(req, res);
  try {
    const details = await provider.interactionDetails(req, res);
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return res.end(loginForm(details.uid));
    }
    const form = await readForm(req);
    const user = users.find((u) => u.username === form.username && u.password === form.password);
    if (!user) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return res.end(loginForm(details.uid, 'Wrong username or password.', form.username));
    }
    await provider.interactionFinished(req, res, { login: { accountId: user.username } }, { mergeWithLastSubmission: false });
  } catch (err) {
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(`Sign-in interaction failed: ${err.message}`);
  }
});

server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider ready at ${issuer} (client ${clientId})`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
