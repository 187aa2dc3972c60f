import numpy as np
from PIL import Image
rng=np.random.default_rng(0)
yy,xx=np.mgrid[:64,:64]
for i,centers in enumerate([[(15,15),(40,20),(30,48)],[(12,50),(48,45),(20,25),(50,12)]]):
    img=rng.normal(10,3,(64,64))
    for (cy,cx) in centers:
        img[(yy-cy)**2+(xx-cx)**2<=36]=200
    Image.fromarray(np.clip(img,0,255).astype(np.uint8)).save(f"IN/img{i+1}.png")
