import { mount } from 'svelte';
import App from './App.svelte';
import { AppState } from './lib/state/app.svelte.js';
import { ApiClient, pickTransport } from './lib/transport.js';
import './styles.css';

const app = new AppState(new ApiClient(pickTransport()));
app.connect();
mount(App, { target: document.getElementById('app')!, props: { app } });
