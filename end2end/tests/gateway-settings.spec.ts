import { expect, test } from './fixtures';
import { BASE, signIn, user, hydrated } from './helpers';

// One team's settings, changed by its lead and then relied on: in order.
test.describe.configure({ mode: 'serial' });

const TEAM = 'payments';
const BUDGET = `/teams/${TEAM}/budget`;
const EMAIL = 'ana@example.com';

test('a team lead sets the gateway settings; they stay after a reload and invalid values are refused', async ({ page }) => {
  await signIn(page, user('lee'), BUDGET);
  await hydrated(page);
  const form = page.getByTestId('gateway-settings');
  await expect(form.getByRole('heading', { name: 'Gateway settings' })).toBeVisible();
  // Before anything is logged or cached, the sections say what to do next.
  await expect(page.getByTestId('request-logs')).toContainText('Request logging is off');
  await expect(page.getByTestId('no-cache-savings')).toContainText('Set a cache lifetime above');

  const cache = form.getByLabel('Response cache lifetime (seconds)');
  const retention = form.getByLabel('Keep logs for (days)');
  const bodies = form.getByLabel('Keep request and response bodies (masked)');
  const save = form.getByRole('button', { name: 'Save gateway settings' });

  // Bodies are kept only while requests are logged.
  await expect(bodies).toBeDisabled();
  // Guardrails need something to look for.
  await form.getByLabel('Prompts that match').selectOption('redact');
  await expect(page.locator('#gw-detectors-error')).toHaveText('Choose at least one detector for the guardrails to use.');
  await expect(save).toBeDisabled();

  await cache.fill('300');
  await form.getByLabel('Email addresses').check();
  await form.getByLabel('API keys').check();
  await expect(page.locator('#gw-detectors-error')).toHaveText('');
  await form.getByLabel('Log requests', { exact: true }).check();
  await bodies.check();
  await retention.fill('14');
  await save.click();
  await expect(page.getByText('Gateway settings saved. They apply from the next request.')).toBeVisible();

  await page.reload();
  await hydrated(page);
  await expect(cache).toHaveValue('300');
  await expect(form.getByLabel('Email addresses')).toBeChecked();
  await expect(form.getByLabel('API keys')).toBeChecked();
  await expect(form.getByLabel('Phone numbers')).not.toBeChecked();
  await expect(form.getByLabel('Prompts that match')).toHaveValue('redact');
  await expect(form.getByLabel('Answers that match')).toHaveValue('off');
  await expect(form.getByLabel('Log requests', { exact: true })).toBeChecked();
  await expect(bodies).toBeChecked();
  await expect(retention).toHaveValue('14');
  await expect(page.getByTestId('request-logs')).toContainText('No requests logged yet');

  // An invalid value: the error beside the field, and nothing is sent.
  await retention.fill('0');
  await expect(page.locator('#gw-retention-error')).toHaveText('Must be 1–90 days.');
  await expect(retention).toHaveAttribute('aria-invalid', 'true');
  await expect(save).toBeDisabled();
  await page.reload();
  await hydrated(page);
  await expect(retention).toHaveValue('14');

  // The server holds the same rules, naming the field.
  const refused = await page.request.put(`/api/budgets/v1/teams/${TEAM}/gateway-settings`, {
    headers: { Origin: new URL(BASE).origin },
    data: { cache_ttl_secs: 300, log_requests: true, log_retention_days: 0 },
  });
  expect(refused.status()).toBe(422);
  expect(await refused.text()).toContain('log_retention_days');
  await page.reload();
  await hydrated(page);
  await expect(retention).toHaveValue('14');
});

test('a developer of the team sees the gateway settings read-only', async ({ page }) => {
  await signIn(page, user('dana'), BUDGET);
  await hydrated(page);
  const settings = page.getByTestId('gateway-settings');
  await expect(page.getByTestId('gateway-settings-note')).toContainText("Only the team's lead");
  await expect(settings.getByTestId('ro-cache')).toHaveText('300 seconds');
  await expect(settings.getByTestId('ro-detectors')).toHaveText('Email addresses, API keys');
  await expect(settings.getByTestId('ro-prompt')).toContainText('Redact');
  await expect(settings.getByTestId('ro-response')).toHaveText('Off');
  await expect(settings.getByTestId('ro-logs')).toHaveText('On with bodies (masked), kept 14 days');
  await expect(settings.getByTestId('ro-rotation')).toHaveText('No policy');
  await expect(page.getByRole('button', { name: 'Save gateway settings' })).toHaveCount(0);
  await expect(page.getByLabel('Response cache lifetime (seconds)')).toHaveCount(0);
});

test('a call through the gateway is logged with the email masked, and a repeat comes from the cache', async ({ page }) => {
  await signIn(page, user('lee'), BUDGET);
  await hydrated(page);
  await page.getByLabel('Key name').fill('gateway-settings-e2e');
  await page.getByRole('button', { name: 'Create key' }).click();
  const shown = page.getByTestId('new-gateway-key');
  await expect(shown).toContainText('pvg_');
  const key = (await shown.textContent())!.trim();

  const call = () =>
    fetch(`${BASE}/llm/v1/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json', 'X-Paved-Feature': 'refund-replies' },
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: `Write to ${EMAIL} about the refund.` }],
        max_tokens: 50,
      }),
    });
  const first = await call();
  expect(first.status, await first.text()).toBe(200);

  // The log is written moments after the answer.
  const entries = page.getByTestId('request-log');
  await expect(async () => {
    await page.reload();
    await expect(entries.first()).toContainText('gateway-settings-e2e', { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
  const entry = entries.first();
  await expect(entry).toContainText('gpt-4o-mini');
  await expect(entry).toContainText('200');
  await expect(entry).toContainText('feature refund-replies');
  await expect(entry).toContainText('email:1');
  await entry.locator('summary').click();
  const request = entry.getByTestId('request-body');
  await expect(request).toBeVisible();
  await expect(request).toContainText('[EMAIL]');
  await expect(request).not.toContainText(EMAIL);
  await expect(entry.getByTestId('response-body')).toBeVisible();
  expect(await page.content()).not.toContain(EMAIL);

  // The same request again is answered from the cache, and the saving is counted.
  const second = await call();
  expect(second.status, await second.text()).toBe(200);
  await expect(async () => {
    await page.reload();
    await expect(entries).toHaveCount(2, { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
  await expect(entries.first()).toContainText('cache hit');
  await expect(page.getByTestId('cache-savings')).toContainText('refund-replies');
  expect(await page.content()).not.toContain(EMAIL);
});
