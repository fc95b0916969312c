// Entry point of both pages.
import { receivePage } from "./ui/receive_page";
import { runScene, sceneFromPage } from "./ui/scene";
import { sendPage } from "./ui/send_page";

const scene = sceneFromPage();
if (scene) runScene(scene);
else if (document.body.dataset.page === "receive") receivePage();
else sendPage();
