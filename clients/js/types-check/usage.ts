// Compiled with `tsc --noEmit` (npm run check-types): the declarations
// describe what a widget developer writes.
import { WidgetTokenClient, WidgetTokenError, parseRetryAfter } from '../widget-client.js';
import type { WidgetToken } from '../widget-client.js';

const client = new WidgetTokenClient({
  url: 'https://sa.contoso.com/v1/widget-token',
  renewal: 'auto',
  timeoutMs: 20_000,
  onToken: (token: WidgetToken) => {
    const seconds: number = token.expiresIn;
    const hint: number | undefined = token.renewAfter;
    void seconds;
    void hint;
  },
});

const off: () => void = client.on('error', (error: WidgetTokenError) => {
  const mayPass: boolean = error.transient;
  void mayPass;
  if (error.final) {
    const code: string = error.code;
    const id: string = error.requestId;
    void code;
    void id;
  }
});
off();

async function start(): Promise<string> {
  try {
    const token = await client.getToken();
    return token.discoverUri;
  } catch (e) {
    if (e instanceof WidgetTokenError && e.retryable) return '';
    throw e;
  } finally {
    const current: WidgetToken | null = client.token;
    void current;
  }
}
void start();
void client.renew().then((fresh: WidgetToken) => fresh.applicationSessionId);

const wait: number | undefined = parseRetryAfter('5', Date.now());
void wait;

// @ts-expect-error: renewal takes three values only.
new WidgetTokenClient({ url: 'x', renewal: 'sometimes' });
// @ts-expect-error: there are two events.
client.on('tokens', () => {});
client.stop();
