import { Browser, Page } from '@playwright/test';
import { expect, test } from './fixtures';
import { hydrated, signIn, user } from './helpers';

/** Signs `username` in on a fresh browser context and answers the home page's prompt. */
async function answerThroughPrompt(browser: Browser, title: string, username: string, score: number, driver: number) {
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    await signIn(page, user(username), '/');
    await hydrated(page);
    const prompt = page.getByTestId('survey-prompt');
    await expect(prompt).toContainText(title);
    // Two clicks: the score, then Send (the driver is optional and shown once a score is chosen).
    await prompt.getByTestId(`score-${score}`).click();
    await prompt.getByTestId(`driver-0-${driver}`).click();
    await prompt.getByTestId('survey-send').click();
    await expect(prompt.getByTestId('survey-thanks')).toBeVisible();
    // Answered: the prompt is not offered again.
    await page.reload();
    await expect(page.getByRole('heading', { name: /^Hi / })).toBeVisible();
    await expect(page.getByTestId('survey-prompt')).toHaveCount(0);
  } finally {
    await context.close();
  }
}

async function nps(page: Page) {
  await page.reload();
  return page.getByTestId('nps-value');
}

test('a PM surveys team payments, six developers answer through the prompt, the PM sees the NPS move and the heatmap', async ({ page, browser }) => {
  test.setTimeout(180_000);
  const title = `Payments pulse ${Date.now()}`;
  await signIn(page, user('pat'), '/surveys');
  await hydrated(page);
  const builder = page.getByTestId('survey-builder');
  await builder.getByLabel('Title').fill(title);
  await builder.getByLabel(/Driver questions/).fill('Ease of delivering a change\nQuality of the documentation');
  await builder.getByTestId('audience-team-payments').check();
  await builder.getByTestId('survey-create').click();
  await expect(page).toHaveURL(/\/surveys\/[0-9a-f-]{36}$/);
  await expect(page.getByRole('heading', { name: title })).toBeVisible();
  await expect(page.getByTestId('results-hidden')).toContainText('0 of 7 people asked have answered');
  const results = page.url();

  // Four answers: still below the threshold of five, nothing is shown.
  const answers: [string, number, number][] = [
    ['dana', 10, 5],
    ['ravi', 9, 4],
    ['mia', 9, 4],
    ['omar', 8, 3],
    ['lena', 6, 2],
    ['tom', 3, 1],
  ];
  for (const [who, score, driver] of answers.slice(0, 4)) {
    await answerThroughPrompt(browser, title, who, score, driver);
  }
  await page.reload();
  await expect(page.getByTestId('results-hidden')).toContainText('4 of 7 people asked have answered');
  await expect(page.getByTestId('nps-value')).toHaveCount(0);

  // Five: 3 promoters, 1 passive, 1 detractor → (60% − 20%) = +40.
  await answerThroughPrompt(browser, title, ...answers[4]);
  await expect(await nps(page)).toHaveText('+40');
  await expect(page.getByTestId('nps-responses')).toContainText('5 answers of 7 asked · 71% responded');

  // Six: a detractor more → (50% − 33.3%) = +17.
  await answerThroughPrompt(browser, title, ...answers[5]);
  await expect(await nps(page)).toHaveText('+17');
  await expect(page.getByTestId('nps-parts')).toContainText('3 promoters');
  await expect(page.getByTestId('nps-parts')).toContainText('2 detractors');

  // The heatmap: team payments is shown (six answers), with the driver's mean (5+4+4+3+2+1)/6 = 3.2.
  const heatmap = page.getByTestId('heatmap');
  await expect(heatmap).toBeVisible();
  const payments = heatmap.locator('tr', { has: page.getByRole('rowheader', { name: 'payments' }) });
  await expect(payments).toContainText('3.2');
  await expect(page.getByTestId('by-persona')).toContainText('developer');

  // The round appears in the trend on the surveys page.
  await page.goto('/surveys');
  await expect(page.getByTestId('rounds')).toContainText(title);
  await expect(page.getByTestId('nps-trend')).toHaveAttribute('aria-label', new RegExp(`${title}: \\+17`));
  expect(results).toContain('/surveys/');

  // The lead sees the team's NPS on the team's Outcomes page and the team's results.
  const lead = await browser.newContext();
  const leadPage = await lead.newPage();
  await signIn(leadPage, user('lee'), '/teams/payments/outcomes');
  await expect(leadPage.getByTestId('team-nps')).toHaveText('+17');
  await expect(leadPage.getByTestId('team-ai-cost')).toContainText('$');
  await leadPage.goto('/surveys');
  await leadPage.getByTestId('team-surveys').locator('li', { hasText: title }).getByRole('link', { name: 'Team payments' }).click();
  await expect(leadPage.getByTestId('nps-value')).toHaveText('+17');
  await expect(leadPage.getByTestId('survey-csv')).toHaveCount(0);
  await lead.close();
});

test('a developer may not read platform results, and the builder is not offered', async ({ page }) => {
  await signIn(page, user('sid'), '/surveys');
  await expect(page.getByRole('heading', { name: 'Surveys' })).toBeVisible();
  await expect(page.getByTestId('survey-builder')).toHaveCount(0);
  const response = await page.goto('/surveys/00000000-0000-0000-0000-000000000000');
  expect(response?.status()).toBe(403);
});
