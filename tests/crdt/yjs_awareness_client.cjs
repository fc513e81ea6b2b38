// A Yjs editor's side of the awareness interop test (tests/crdt/test_yjs_awareness.py).
// Usage: node yjs_awareness_client.cjs BRIDGE_URL NOTE_ID TOKEN
// Connects with y-websocket, puts its cursor after the 5th character once synced, and prints
// one JSON line per awareness change: the other clients' names and cursor positions.
const Y = require('yjs')
const { WebsocketProvider } = require('y-websocket')
const WebSocket = require('ws')

const [url, note, token] = process.argv.slice(2)
const doc = new Y.Doc()
const provider = new WebsocketProvider(url, note, doc, {
  WebSocketPolyfill: WebSocket, params: { token }, disableBc: true
})
const body = doc.getText('body')

provider.on('sync', (synced) => {
  if (!synced) return
  const at = Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(body, 5))
  provider.awareness.setLocalState({ user: { name: 'js-editor', color: '#123456' },
                                     cursor: { anchor: at, head: at } })
  console.log(JSON.stringify({ synced: true, text: body.toString() }))
})

provider.awareness.on('change', () => {
  const others = []
  provider.awareness.getStates().forEach((state, client) => {
    if (client === doc.clientID || !state.cursor) return
    const head = Y.createAbsolutePositionFromRelativePosition(
      Y.createRelativePositionFromJSON(state.cursor.head), doc)
    others.push({ name: state.user && state.user.name, index: head && head.index })
  })
  console.log(JSON.stringify({ others }))
})

setTimeout(() => process.exit(2), 60000)  // never hang a test run
process.stdin.on('end', () => process.exit(0)).resume()
