// Compiled with `tsc --noEmit`: the chat client as a widget uses it.
import { ChatError, ChatSession } from '../chat-client.js';
import type { ChatMessage, SentMessage } from '../chat-client.js';
import { WidgetTokenClient } from '../widget-client.js';

async function chat(): Promise<void> {
  const tokens = new WidgetTokenClient({ url: 'https://sa.contoso.com/v1/widget-token' });
  const token = await tokens.getToken();
  const session = new ChatSession({ discoverUri: token.discoverUri, token: token.token, to: 'sip:helpdesk@contoso.com' });
  session.on('message', (m: ChatMessage) => void m.text);
  session.on('message-state', (m: SentMessage) => {
    const state: 'sending' | 'delivered' | 'failed' = m.state;
    void state;
  });
  session.on('ended', (e) => void e.by);
  try {
    await session.start();
    const sent = await session.send('Hello');
    void sent.id;
    await session.typing();
    await session.end();
  } catch (e) {
    if (e instanceof ChatError && e.final) return;
    throw e;
  }
}
void chat();

// With the token client as its source.
const source = new ChatSession({ tokens: new WidgetTokenClient({ url: 'https://sa.example/v1/widget-token' }), to: 'sip:helpdesk@contoso.com' });
void source.sessionId;

// @ts-expect-error: a chat needs the help desk's URI.
new ChatSession({ discoverUri: 'x', token: 'psat=y' });
// @ts-expect-error: a token or a token source.
new ChatSession({ to: 'sip:helpdesk@contoso.com' });
