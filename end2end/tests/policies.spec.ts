import { expect, test } from './fixtures';
import { BASE, hydrated, signIn, user } from './helpers';

const violating = `apiVersion: v1
kind: Pod
metadata:
  name: chat
  namespace: payments
spec:
  securityContext: {runAsNonRoot: true}
  containers:
    - name: app
      image: nginx:latest
      resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {cpu: 100m, memory: 64Mi}}
      env:
        - name: OPENAI_API_KEY
          value: sk-not-a-real-key
`;

test('a developer sees the policies in force and checks manifests in the playground', async ({ page }) => {
  await signIn(page, user('dana'), '/');
  await page.getByRole('link', { name: 'Policies' }).first().click();
  await expect(page).toHaveURL(/\/policies$/);
  await hydrated(page);
  const row = page.getByTestId('policy-row').filter({ hasText: 'no-raw-openai-api-key' }).first();
  await expect(row).toContainText('No raw OpenAI API key');
  await expect(row).toContainText('group:default/platform');
  // Owner labels: deny in the scaffolder and CI, warn at admission.
  const labels = page.getByTestId('policy-row').filter({ hasText: 'owner-and-team-labels' });
  await expect(labels.locator('td').nth(2)).toHaveText('deny');
  await expect(labels.locator('td').nth(4)).toHaveText('warn');

  await page.getByLabel(/Kubernetes manifests/).fill(violating);
  await page.getByRole('button', { name: 'Check' }).click();
  const findings = page.getByTestId('playground-findings');
  await expect(findings.locator('li')).toHaveCount(2);
  await expect(findings).toContainText('container app declares OPENAI_API_KEY directly');
  await expect(findings).toContainText('uses the tag latest');
  await expect(page.getByTestId('playground-result')).toContainText('publishing would be blocked');

  await page.getByLabel(/Kubernetes manifests/).fill(violating.replace('nginx:latest', 'nginx:1.27.3').replace(/      env:[\s\S]*$/, ''));
  await page.getByRole('button', { name: 'Check' }).click();
  await expect(page.getByTestId('playground-result')).toContainText('No violations in 1 Kubernetes object.');
  // Developers do not read the recorded violations of every team.
  await expect(page.getByRole('heading', { name: 'Recent violations' })).toHaveCount(0);
});

test('an admin sees what admission refused and grants and revokes an exception', async ({ page, request }) => {
  // The API server sends an AdmissionReview for a Pod with a raw key.
  const uid = `e2e-${Date.now()}`;
  const body = (id: string) => ({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: id,
        kind: { group: '', version: 'v1', kind: 'Pod' },
        operation: 'CREATE',
        namespace: 'payments',
        object: {
          apiVersion: 'v1', kind: 'Pod', metadata: { name: 'chat-e2e', namespace: 'payments' },
          spec: { securityContext: { runAsNonRoot: true }, containers: [{ name: 'app', image: 'nginx:1.27.3',
            resources: { requests: { cpu: '1m', memory: '1Mi' }, limits: { cpu: '1m', memory: '1Mi' } },
            env: [{ name: 'OPENAI_API_KEY', value: 'sk' }] }] },
        },
      },
  });
  const admit = (id: string) =>
    request.post(`${BASE}/api/admission/v1/validate`, { headers: { 'content-type': 'application/json' }, data: body(id) });
  const review = await (await admit(uid)).json();
  expect(review.response.uid).toBe(uid);
  expect(review.response.allowed).toBe(false);
  expect(review.response.status.message).toContain('[no-raw-openai-api-key] Pod chat-e2e');

  await signIn(page, user('ada'), '/policies');
  await hydrated(page);
  // Admins read the policy folders again after changing them.
  await page.getByRole('button', { name: 'Reload policies' }).click();
  await expect(page.getByTestId('reload-result')).toContainText('7 policies in force');
  await page.getByLabel('Where').selectOption('admission');
  const violation = page.getByTestId('violation-row').filter({ hasText: uid });
  await expect(violation).toContainText('Pod/payments/chat-e2e');
  await expect(violation).toContainText('deny');

  // Grant an exception, with a reason and an expiry.
  await page.getByText('Grant an exception').click();
  await page.getByLabel('Policy', { exact: true }).selectOption('no-raw-openai-api-key');
  await page.getByLabel('Namespace', { exact: true }).fill('payments');
  await page.getByLabel('Objects', { exact: true }).fill('chat-e2e');
  await page.getByLabel('Owning team').selectOption('payments');
  await page.getByLabel('Days', { exact: true }).fill('7');
  await page.getByLabel('Reason', { exact: true }).fill('Migrating chat-e2e to Vault this sprint');
  await page.getByRole('button', { name: 'Grant exception' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Exception granted' })).toBeVisible();
  const exception = page.getByTestId('exception-row').filter({ hasText: 'payments/chat-e2e' }).first();
  await expect(exception).toContainText('active');

  // Admission now records the finding as excepted and allows the Pod.
  expect((await (await admit(`${uid}-2`)).json()).response.allowed).toBe(true);

  await exception.getByRole('button', { name: /Revoke the exception/ }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Exception revoked' })).toBeVisible();
  await expect(page.getByTestId('exception-row').filter({ hasText: 'payments/chat-e2e' }).first()).toContainText('revoked');
});
