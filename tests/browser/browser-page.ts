import { createRequire } from 'node:module';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { RunningHub } from '../../src/app.js';
import { deviceClient, startHubWithEnv } from '../helpers/hub.js';

/** Headless Chromium (Debian's package) for the dashboard tests. */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A hub with `env`, a device publishing to it, and Chromium: what every dashboard test starts from. */
export async function startDashboard(env: Record<string, string>): Promise<{
  hub: RunningHub;
  device: Awaited<ReturnType<typeof deviceClient>>;
  browser: Browser;
  stop(): Promise<void>;
}> {
  const hub = await startHubWithEnv(env);
  const device = await deviceClient(hub, hub.config.MQTT_TOPIC_PREFIX);
  const browser = await launchChromium();
  return {
    hub,
    device,
    browser,
    async stop() {
      await browser.close();
      await device.client.endAsync();
      await hub.stop();
    },
  };
}

/**
 * A page that records every page error, console error and Content-Security-Policy violation,
 * so a test can demand there were none.
 */
export async function watchedPage(context: BrowserContext): Promise<{ page: Page; problems: string[] }> {
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  await page.addInitScript(`document.addEventListener('securitypolicyviolation', (e) => console.error('csp: ' + e.violatedDirective + ' ' + e.blockedURI))`);
  return { page, problems };
}

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

/**
 * axe-core's serious and critical violations on the page as it is now (the context must be made
 * with bypassCSP: axe is injected as an inline script, which the dashboard's policy refuses).
 */
export async function seriousViolations(page: Page): Promise<string[]> {
  if (!(await page.evaluate('typeof window.axe !== "undefined"'))) await page.addScriptTag({ path: AXE });
  const result = (await page.evaluate(`axe.run(document, { resultTypes: ['violations'] })`)) as {
    violations: { id: string; impact: string | null; help: string; nodes: { target: string[] }[] }[];
    passes: unknown[];
  };
  const lesser = result.violations.filter((v) => v.impact !== 'serious' && v.impact !== 'critical');
  process.stdout.write(`axe ${new URL(page.url()).hash || '#/'}: ${result.passes.length} rules passed; moderate/minor: ${lesser.map((v) => `${v.impact} ${v.id}`).join(', ') || 'none'}\n`);
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
}
